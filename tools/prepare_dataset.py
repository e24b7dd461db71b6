"""Turn raw videos into face clips for training (ROOT/train, ROOT/test, manifest.json, report.txt).

Example:
    python tools/prepare_dataset.py --input ~/phone_videos --output data/mine --size 256 --workers 4

Videos without a usable face are skipped and listed in ROOT/report.txt; the run still ends with status 0
(a warning says when no clip at all was made). A second run into the same ROOT adds its clips to the
manifest (a warning says when the earlier clips were made with other settings). Bad arguments, missing
inputs or a missing dlib end it with status 2 and one ``error:`` line on stderr.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import NoReturn

# lmtk (and torch with it) is imported after the arguments are checked, so --help and mistakes are quick
LAYOUTS = ("video", "frames")


class _OneLineParser(argparse.ArgumentParser):
    """Reports a bad argument as a single ``error:`` line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input",
        required=True,
        nargs="+",
        type=Path,
        metavar="DIR_OR_FILE",
        help="videos or folders of videos",
    )
    parser.add_argument("--output", required=True, type=Path, metavar="ROOT", help="dataset root folder")
    parser.add_argument("--size", type=int, default=256, help="clip side in pixels (default 256)")
    parser.add_argument(
        "--split", type=float, default=0.9, help="fraction of source videos for train/ (default 0.9)"
    )
    parser.add_argument("--min-frames", type=int, default=32, help="shortest clip kept (default 32)")
    parser.add_argument(
        "--max-frames",
        type=int,
        default=1000,
        help="longer clips are cut in pieces; 0: no limit (default 1000)",
    )
    parser.add_argument("--workers", type=int, default=1, help="videos processed in parallel (default 1)")
    parser.add_argument("--layout", choices=LAYOUTS, default="video", help="mp4 clips or png folders")
    parser.add_argument(
        "--keyframe-interval",
        type=int,
        default=8,
        help="most frames between keyframes of an mp4 clip: shorter is faster for training to read, "
        "larger on disk (default 8; 1: every frame, as fast as png folders)",
    )
    parser.add_argument(
        "--margin", type=float, default=0.6, help="room around the face, in face sizes per side (default 0.6)"
    )
    parser.add_argument(
        "--shift", type=float, default=0.1, help="move the box down by this many face sizes (default 0.1)"
    )
    parser.add_argument(
        "--detect-every", type=int, default=5, help="run the detector every N frames (default 5)"
    )
    parser.add_argument(
        "--detect-size",
        type=int,
        default=640,
        help="longer side of the frames the detector sees (default 640)",
    )
    parser.add_argument(
        "--upsample",
        type=int,
        choices=(0, 1, 2),
        default=0,
        help="let the detector double each frame N times to find small faces (1: down to ~40 px; slower)",
    )
    parser.add_argument(
        "--pad", choices=("edge", "constant"), default="edge", help="fill for boxes past the frame edge"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    missing = [str(path) for path in args.input if not path.exists()]
    if missing:
        parser.error(f"input not found: {', '.join(missing)}")
    blocking = next((p for p in (args.output, *args.output.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        parser.error(f"--output {args.output} must be a folder, but {blocking} is a file")
    return args


def _import_prepare():
    try:
        from lmtk.preprocessing import prepare
    except ModuleNotFoundError as error:  # run from a source checkout without `pip install -e .`
        if error.name != "lmtk":
            raise
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from lmtk.preprocessing import prepare
    return prepare


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        prepare = _import_prepare()
        from lmtk.cli import interrupted_exit_code, interrupted_word, sigterm_as_interrupt
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    try:
        options = prepare.PrepareOptions(
            size=args.size,
            layout=args.layout,
            keyframe_interval=args.keyframe_interval,
            margin=args.margin,
            shift=args.shift,
            detect_every=args.detect_every,
            detect_size=args.detect_size,
            upsample=args.upsample,
            min_frames=args.min_frames,
            max_frames=args.max_frames,
            split=args.split,
            pad=args.pad,
        )
        with sigterm_as_interrupt(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", prepare.PrepareWarning)
            manifest = prepare.prepare_dataset(
                args.input, args.output, options, workers=args.workers, progress=not args.no_progress
            )
    except (ValueError, OSError, ImportError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        print(
            f"error: {interrupted_word(error)}; the manifest keeps the videos finished so far: run the same "
            "command again to finish",
            file=sys.stderr,
        )
        return interrupted_exit_code(error)
    for warning in caught:
        if issubclass(warning.category, prepare.PrepareWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    splits, run = manifest["splits"], manifest["this_run"]
    made = run["videos"] - run["skipped"]
    print(
        f"made {run['clips']} clip{'' if run['clips'] == 1 else 's'} from {made} of {run['videos']} videos "
        f"({run['skipped']} skipped: see "
        f"{args.output / 'report.txt'}); {args.output} holds {len(manifest['clips'])} clips "
        f"({len(splits['train'])} train, {len(splits['test'])} test)"
    )
    if not manifest["clips"]:
        print("warning: no clip was made; see report.txt for each video's reason", file=sys.stderr)
    elif not splits["train"]:
        print("warning: no clip landed in train/ (split by source name); use --split 1.0", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
