"""Export an LIA checkpoint to ONNX graphs for onnxruntime, each checked against PyTorch.

Example::

    python tools/export_onnx.py vox.pt --output vox_onnx
    python tools/export_onnx.py vox.pt --output vox_onnx --opset 18 --int8 --calibration driving.mp4

The folder gets ``source.onnx``, ``motion.onnx``, ``path.onnx``, ``synthesis.onnx`` (with ``--int8`` also
``motion.int8.onnx`` and ``synthesis.int8.onnx``) and ``manifest.json``. Each graph is run in
onnxruntime's CPU provider right after export and its relative error against PyTorch printed; over 1e-4
(float32) the export fails and nothing is written. See docs/deploy.md.
"""

from __future__ import annotations

import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

from lmtk.cli import ArgumentParser, output_folder, positive_int, print_error  # noqa: E402


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "checkpoint", help="an lmtk or published LIA checkpoint, a training work dir, or a config"
    )
    parser.add_argument("--output", required=True, type=output_folder, help="the folder to write")
    parser.add_argument("--config", help="config whose model overrides the checkpoint's architecture")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18; 16 or more)")
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument(
        "--dynamic-batch",
        dest="dynamic_batch",
        action="store_true",
        default=True,
        help="a dynamic batch axis on every graph (the default)",
    )
    batch.add_argument(
        "--fixed-batch", dest="dynamic_batch", action="store_false", help="every graph takes batch 1"
    )
    parser.add_argument("--int8", action="store_true", help="also write int8 motion and synthesis graphs")
    parser.add_argument(
        "--calibration", help="--int8: a video or frame folder whose frames calibrate the int8 graphs"
    )
    parser.add_argument(
        "--calibration-frames", type=positive_int, default=32, help="--int8: frames read (default 32)"
    )
    args = parser.parse_args(argv)
    if args.calibration and not args.int8:
        parser.error("--calibration is for --int8")
    return args


def _calibration_frames(path: str, count: int, size: int):
    import numpy as np

    from lmtk.apis.media import fit_image
    from lmtk.datasets.video_reader import open_video

    reader = open_video(path)
    indices = np.linspace(0, len(reader) - 1, min(count, len(reader))).round().astype(int)
    return np.stack([fit_image(f, size, "resize") for f in reader.get_frames(sorted(set(indices)))])


def main(argv=None) -> int:
    args = parse_args(argv)
    import lmtk
    from lmtk.apis.onnx_export import DEFAULT_OPSET, export_onnx
    from lmtk.checkpoint import CheckpointError
    from lmtk.registry import RegistryError

    try:
        model = lmtk.load_model(args.checkpoint, config=args.config)
        frames = (
            _calibration_frames(args.calibration, args.calibration_frames, model.size)
            if args.calibration
            else None
        )
        errors = export_onnx(
            model,
            args.output,
            opset=args.opset or DEFAULT_OPSET,
            dynamic_batch=args.dynamic_batch,
            int8=args.int8,
            calibration_frames=frames,
        )
    except (CheckpointError, RegistryError, OSError, ValueError, TypeError) as error:
        print_error(error)
        return 1
    for name, error in errors.items():
        what = "vs the float32 model" if name.endswith("_int8") else "vs PyTorch"
        print(f"{name:16s} relative error {error:.2e} {what}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
