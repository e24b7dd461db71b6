"""Screenshots of each tab of lmtk studio for docs/studio.md, taken by the browser test itself.

    python tools/studio_screenshots.py [--output-dir docs/images] [--data ../shared/data]

Runs ``tests/studio/test_browser.py`` (Debian's headless Chromium on ``tools/studio.py`` with a tiny
untrained model) with ``LMTK_STUDIO_SCREENSHOTS`` set, so each tab is pictured in the state the test
checks: a slider moved, an animation offered, the webcam animated. ``--data`` (default
``$LMTK_TEST_DATA``) is the demo clips folder: its portrait and clip make the pictures; without it
they are synthetic. Writes ``studio_<tab>.png`` (about 50-100 kB each).
"""

from __future__ import annotations

import os
import os.path as osp
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, str(REPOSITORY))  # run from a checkout without install

from lmtk.cli import ArgumentParser, output_folder  # noqa: E402

TABS = ("animate", "edit", "edit_video", "live", "model")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=output_folder, default=str(REPOSITORY / "docs" / "images"))
    parser.add_argument("--data", default=os.environ.get("LMTK_TEST_DATA"), help="the demo clips folder")
    args = parser.parse_args(argv)
    output = Path(args.output_dir).resolve()
    output.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "LMTK_STUDIO_SCREENSHOTS": str(output),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])),
        "CI": "true",  # no Chromium is an error here, not a skipped test
    }
    if args.data:
        env["LMTK_TEST_DATA"] = str(Path(args.data).resolve())
    test = REPOSITORY / "tests" / "studio" / "test_browser.py"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", str(test)]
    status = subprocess.call(command + (["-n", "0"] if _has_xdist() else []), env=env, cwd=REPOSITORY)
    missing = [tab for tab in TABS if not (output / f"studio_{tab}.png").is_file()]
    if status or missing:
        print(
            f"error: the browser test failed (status {status}); missing screenshots: {missing}",
            file=sys.stderr,
        )
        return 1
    print(f"wrote {', '.join(f'studio_{tab}.png' for tab in TABS)} to {output}")
    return 0


def _has_xdist() -> bool:
    import importlib.util

    return importlib.util.find_spec("xdist") is not None


if __name__ == "__main__":
    sys.exit(main())
