"""Write a procedural talking-face dataset (MP4 or PNG clips with keypoint and motion annotations).

Example:
    python tools/make_synthetic_dataset.py --output data/synthetic --num-train 64 --num-test 8 --size 64

Bad arguments exit with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

try:
    from lmtk.datasets.synthetic.writer import LAYOUTS, make_synthetic_dataset
except ModuleNotFoundError:  # run from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from lmtk.datasets.synthetic.writer import LAYOUTS, make_synthetic_dataset


class _OneLineParser(argparse.ArgumentParser):
    """Reports a bad argument as a single line (no usage block), like the checks after parsing."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, type=Path, help="dataset root folder")
    parser.add_argument("--num-train", type=int, default=64, help="training clips (default 64)")
    parser.add_argument("--num-test", type=int, default=8, help="test clips (default 8)")
    parser.add_argument("--frames", type=int, default=32, help="frames per clip (default 32)")
    parser.add_argument("--size", type=int, default=64, help="frame side in pixels, 32-256 (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--layout", choices=LAYOUTS, default="video", help="mp4 clips or png folders")
    parser.add_argument(
        "--clips-per-identity", type=int, default=1, help="clips sharing one face (default 1)"
    )
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate (default 25)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fps = int(args.fps) if float(args.fps).is_integer() else args.fps
    try:
        manifest = make_synthetic_dataset(
            args.output,
            num_train=args.num_train,
            num_test=args.num_test,
            num_frames=args.frames,
            size=args.size,
            seed=args.seed,
            layout=args.layout,
            fps=fps,
            clips_per_identity=args.clips_per_identity,
            progress=not args.no_progress,
        )
    except (ValueError, OSError) as error:
        print(f"{Path(sys.argv[0]).name}: error: {error}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{len(clips)} {split}" for split, clips in manifest["splits"].items())
    print(f"wrote {counts} clips to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
