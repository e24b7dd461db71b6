"""Animate a still image with the motion of a driving video and write an mp4.

Example::

    python tools/animate.py --checkpoint vox.pt --source portrait.png --driving talk.mp4 --output out.mp4
    python tools/animate.py --checkpoint vox.pt --source portrait.png --driving talk.mp4 \\
        --output out.mp4 --find-start-frame --side-by-side --device cuda --batch-size 64
    # faster on a GPU: bf16, channels_last, the blur as separable multiply-adds, torch.compile with
    # frozen weights (docs/performance.md)
    python tools/animate.py ... --device cuda --batch-size 64 --dtype bfloat16 --channels-last \\
        --blur separable --compile --freeze
    # onnxruntime on an export folder (tools/export_onnx.py), the motion smoothed (docs/deploy.md)
    python tools/animate.py --checkpoint vox_onnx --backend onnxruntime --smooth ...
    # LIA-X (lia-x.pt): turn the head and open the eyes, then animate (edit-then-animate)
    python tools/animate.py --checkpoint lia-x.pt --source portrait.png --driving talk.mp4 \\
        --output out.mp4 --edit yaw1=0.3 eyes=0.2

The checkpoint may be an lmtk checkpoint or a published LIA or LIA-X checkpoint. Source images of any size, aspect
and mode and driving videos of any resolution are brought to the model size. The output keeps the driving
video's exact frame rate and, unless ``--no-audio``, its audio track. See docs/animate.md.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys
from pathlib import Path

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

import av  # noqa: E402
import numpy as np  # noqa: E402

from lmtk.apis import Animator, VideoWriter, video_frame_rate  # noqa: E402
from lmtk.apis.animator import DTYPES, MODES  # noqa: E402
from lmtk.apis.compose import animate_composed  # noqa: E402
from lmtk.apis.media import CRF_RANGE, FIT_MODES, load_image  # noqa: E402
from lmtk.cli import (  # noqa: E402
    ArgumentParser,
    add_backend_arguments,
    add_fast_path_arguments,
    add_model_arguments,
    add_smoothing_arguments,
    backend_options,
    export_note,
    fast_path_overrides,
    frame_index,
    interrupted_exit_code,
    interrupted_word,
    positive_int,
    print_error,
    refuse_inert_backend_options,
    refuse_inert_fast_path_options,
    sigterm_as_interrupt,
    smoothing_filter,
)
from lmtk.fast_paths import FastPaths, apply_fast_paths  # noqa: E402
from lmtk.models.direction_names import parse_edit  # noqa: E402
from lmtk.registry import RegistryError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(
        parser,
        checkpoint_help="lmtk or published LIA/LIA-X checkpoint, hf://OWNER/REPO/FILE, a training work dir "
        "(its newest checkpoint), or a config",
    )
    parser.add_argument(
        "--source",
        required=True,
        help="the image to animate (any size, RGB/RGBA/grey; of a video, its first frame)",
    )
    parser.add_argument("--driving", required=True, help="the driving video (a file or a frame folder)")
    parser.add_argument("--output", required=True, help="the output video (.mp4)")
    parser.add_argument(
        "--mode", choices=MODES, default="relative", help="motion transfer (default relative)"
    )
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--start-frame",
        type=frame_index,
        default=0,
        help="driving frame matching the source pose (default 0)",
    )
    start.add_argument(
        "--find-start-frame",
        action="store_true",
        help="use the driving frame nearest the source in motion magnitudes as the start frame",
    )
    parser.add_argument("--batch-size", type=positive_int, default=16, help="frames per network call")
    parser.add_argument("--chunk-size", type=positive_int, default=64, help="frames decoded per read")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32", help="compute precision")
    parser.add_argument("--resize", choices=FIT_MODES, default="resize", help="squash or centre-crop inputs")
    parser.add_argument("--no-audio", action="store_true", help="do not copy the driving video's audio")
    parser.add_argument("--side-by-side", action="store_true", help="write source | driving | result")
    parser.add_argument(
        "--crop-source", action="store_true", help="crop the source to its face (dlib) before animating"
    )
    parser.add_argument(
        "--crop-driving",
        action="store_true",
        help="crop the driving video to one face box for the whole clip",
    )
    parser.add_argument(
        "--paste-back",
        action="store_true",
        help="paste the animated face back into the uncropped source (needs --crop-source)",
    )
    parser.add_argument(
        "--crop-margin", type=float, default=0.6, help="face box margin, in face sizes per side (default 0.6)"
    )
    parser.add_argument(
        "--crf",
        type=crf,
        default=18,
        help=f"x264 quality, {CRF_RANGE[0]}-{CRF_RANGE[1]}, lower is better (default 18)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--edit",
        nargs="+",
        metavar="DIRECTION=VALUE",
        help="edit the source before animating it (LIA-X's navigation): a direction name of the model or an "
        "index, and how far to move along it, e.g. --edit yaw1=0.3 eyes=-0.2",
    )
    add_fast_path_arguments(parser, dtype=False)
    add_backend_arguments(parser)
    add_smoothing_arguments(parser)
    args = parser.parse_args(argv)
    refuse_inert_backend_options(parser, args)
    args.smoothing = smoothing_filter(parser, args)
    if args.paste_back and not args.crop_source:
        parser.error("--paste-back needs --crop-source")
    if args.paste_back and args.side_by_side:
        parser.error("--paste-back and --side-by-side cannot be combined")
    refuse_inert_fast_path_options(parser, args)
    try:
        args.edit = parse_edit(args.edit or [])
    except ValueError as error:
        parser.error(str(error))
    return args


def crf(text: str) -> int:
    """An argparse type: an x264 constant rate factor (:data:`~lmtk.apis.media.CRF_RANGE`)."""
    low, high = CRF_RANGE
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer {low}-{high}, got {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"expected {low}-{high} (lower is better), got {value}")
    return value


def _check_paths(args: argparse.Namespace) -> Path:
    from lmtk.checkpoint import is_hub_reference

    for name in ("checkpoint", "source", "driving"):
        if name == "checkpoint" and is_hub_reference(args.checkpoint):
            continue  # hf://OWNER/REPO/FILE: load_model finds it in the Hub cache or says how to get it
        if not Path(getattr(args, name)).exists():
            raise FileNotFoundError(f"--{name} not found: {getattr(args, name)}")
    if args.config and not Path(args.config).exists():  # a folder: load_model says what to pass
        raise FileNotFoundError(f"--config not found: {args.config}")
    output = Path(args.output)
    if output.parent.exists() and not output.parent.is_dir():
        raise FileNotFoundError(f"cannot write {output}: {output.parent} is a file, not a folder")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"output folder not found: {output.parent}")
    if output.exists() and output.resolve() == Path(args.driving).resolve():
        raise ValueError("--output would overwrite the driving video")
    return output


def run(args: argparse.Namespace) -> Path:
    output = _check_paths(args)
    # read the inputs and open the output first: a bad image, video or output path (a folder, a suffix
    # that holds no video) fails fast, before the model loads
    image = load_image(args.source)
    if args.paste_back and min(image.shape[:2]) < 2:
        # the video is written at the source's size, and H.264 (4:2:0) needs at least 2x2 pixels
        raise ValueError(
            f"--paste-back writes the video at the size of --source {args.source}, {image.shape[1]}x"
            f"{image.shape[0]} pixels, and a video needs at least 2x2; drop --paste-back or use a larger source"
        )
    fps = video_frame_rate(args.driving)
    audio = None if args.no_audio else args.driving
    with VideoWriter(output, fps, audio_from=audio, crf=args.crf) as writer:
        _animate_into(writer, args, image)
    return output


def _animate_into(writer: VideoWriter, args: argparse.Namespace, image: np.ndarray) -> None:
    note = export_note(args, args.checkpoint)
    if note:
        print(f"note: {note}", file=sys.stderr)
    animator = Animator(
        args.checkpoint,
        config=args.config,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        resize=args.resize,
        trust=args.trust_checkpoint,
        **backend_options(args),
    )
    paths = FastPaths(**fast_path_overrides(args))
    if animator.model is not None and paths != FastPaths(dtype=args.dtype):
        apply_fast_paths(animator.model, paths)
    start_frame = "auto" if args.find_start_frame else args.start_frame
    if args.mode == "absolute" and (args.find_start_frame or args.start_frame):
        print("note: absolute mode uses no start frame; ignoring it", file=sys.stderr)
        start_frame = 0
    frames = animate_composed(
        animator,
        image,
        args.driving,
        mode=args.mode,
        start_frame=start_frame,
        crop_source=args.crop_source,
        crop_driving=args.crop_driving,
        crop_margin=args.crop_margin,
        paste_back=args.paste_back,
        side_by_side=args.side_by_side,
        smooth=args.smoothing or False,
        edit=args.edit,
        progress=not args.quiet,
        note=lambda text: print(f"note: {text}", file=sys.stderr),
    )
    for frame in frames:
        writer.write(frame)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with sigterm_as_interrupt():  # the partial output is removed either way
            output = run(args)
    except (
        OSError,  # a missing input, an output folder that cannot be written
        ValueError,
        TypeError,
        RegistryError,
        av.FFmpegError,
    ) as error:
        # expected failures (bad inputs, bad options, a checkpoint of another model): one line, no traceback
        print_error(error)
        return 1
    except KeyboardInterrupt as error:
        print(f"error: {interrupted_word(error)}", file=sys.stderr)
        return interrupted_exit_code(error)
    if not args.quiet:
        print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
