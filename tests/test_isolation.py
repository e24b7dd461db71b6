"""The README's two commands in one checkout: a quickstart run beside the tests changes no test outcome.

The quickstart writes ``work_dirs/lia_synthetic_m20`` and ``data/synthetic_64`` into the directory it
runs in. The tests must neither read nor write such folders: each runs in a temporary directory
(``tests/conftest.py``), and building a training config never looks at its work dir.
"""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# tests that build the quickstart config with its default work dir and data root, or train from it
TESTS_THAT_USE_DEFAULT_FOLDERS = [
    "tests/engine/test_training.py::test_train_tool_reads_fast_path_options",
    "tests/configs/test_configs.py",
]


def _populate_like_the_quickstart(folder: Path) -> dict[Path, bytes]:
    """A finished quickstart run and its data, as the README's first command leaves them."""
    run = folder / "work_dirs" / "lia_synthetic_m20"
    data = folder / "data" / "synthetic_64"
    files = {
        run / "iter_2500.pth": b"a checkpoint",
        run / "last_checkpoint": str(run / "iter_2500.pth").encode(),
        data / "manifest.json": b"{}",
        data / "train" / "id0000#00.mp4": b"not a video",
    }
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cwd_is_a_fresh_temporary_folder():
    cwd = Path.cwd()
    assert cwd != REPO and REPO not in cwd.parents
    assert not any(cwd.iterdir())


def test_a_quickstart_run_in_the_directory_changes_no_test_outcome(tmp_path):
    checkout_like = tmp_path / "checkout"
    _populate_like_the_quickstart(checkout_like)
    before = _snapshot(checkout_like)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTEST_XDIST_WORKER", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "--rootdir", str(REPO)]
        + [str(REPO / test) for test in TESTS_THAT_USE_DEFAULT_FOLDERS],
        cwd=checkout_like,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
    assert _snapshot(checkout_like) == before  # nothing read as a run of its own, nothing written
