"""tools/dist_train.sh hands its arguments to torchrun from the caller's directory."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_relative_paths_are_the_callers(tmp_path):
    # It used to cd to the repository, so --work-dir runs/x landed inside the checkout.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python"
    fake.write_text('#!/usr/bin/env bash\npwd > "$RECORD"\nprintf "%s\\n" "$@" >> "$RECORD"\n')
    fake.chmod(0o755)
    record = tmp_path / "record.txt"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "RECORD": str(record)}
    subprocess.run(
        ["bash", str(REPO / "tools" / "dist_train.sh"), "my.py", "2", "--work-dir", "runs/x"],
        cwd=tmp_path,
        env=env,
        check=True,
    )
    cwd, *args = record.read_text().splitlines()
    assert Path(cwd).resolve() == tmp_path.resolve()
    train = args[args.index("my.py") - 1]
    assert Path(train).resolve() == REPO / "tools" / "train.py"
    assert args[-4:] == ["--launcher", "pytorch", "--work-dir", "runs/x"]
    assert "--nproc_per_node=2" in args


def test_too_few_arguments_print_the_usage():
    result = subprocess.run(["bash", str(REPO / "tools" / "dist_train.sh")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == "usage: bash tools/dist_train.sh CONFIG NUM_PROCS [tools/train.py options]\n"
