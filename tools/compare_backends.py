"""Compare the onnxruntime backends (float32, int8) with PyTorch on held-out videos: PSNR and L1.

Example::

    python tools/export_onnx.py work_dirs/lia_synthetic_m20/iter_2500.pth --output synthetic_onnx --int8 \\
        --calibration "data/synthetic_64/train/id0000#00.mp4"
    python tools/compare_backends.py work_dirs/lia_synthetic_m20/iter_2500.pth synthetic_onnx \\
        data/synthetic_64/test/*.mp4

Each video is reconstructed from its first frame (absolute transfer, every frame driving, as
``tools/test.py --protocol recon``) by each backend. Printed per backend: the PSNR of its frames against
PyTorch float32's (uint8 frames; inf when identical) and the reconstruction L1 against the real frames
([0, 1] images, as tools/test.py), averaged over the videos. See docs/deploy.md.
"""

from __future__ import annotations

import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

from lmtk.cli import ArgumentParser, print_error  # noqa: E402


def _psnr(ours, reference) -> float:
    import numpy as np

    mse = float(np.mean((ours.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def compare(checkpoint: str, export_dir: str, videos: list[str]) -> dict:
    import numpy as np

    from lmtk.apis import Animator
    from lmtk.apis.animator import to_uint8
    from lmtk.apis.onnx_backend import read_manifest

    animators = {"pytorch": Animator(checkpoint)}
    options = dict(backend="onnxruntime", export_dir=export_dir)
    animators["onnxruntime float32"] = Animator(checkpoint, **options)
    if "int8" in read_manifest(export_dir):
        animators["onnxruntime int8"] = Animator(checkpoint, int8=True, **options)
    psnr = {name: [] for name in animators}
    l1 = {name: [] for name in animators}
    for video in videos:
        reader = animators["pytorch"].open_driving(video)
        frames = np.stack(list(reader.get_frames(range(len(reader)))))
        real = animators["pytorch"]._driving_frames(frames)
        reference = None
        for name, animator in animators.items():  # pytorch first: the reference of the others
            fake = animator.animate_frames(frames[0], frames, mode="absolute", output="tensor")
            reference = to_uint8(fake) if reference is None else reference
            psnr[name].append(_psnr(to_uint8(fake), reference))
            l1[name].append(float((fake.clamp(-1, 1) - real).abs().mean() / 2))
    return {
        name: {"psnr_vs_pytorch": float(np.mean(psnr[name])), "l1": float(np.mean(l1[name]))}
        for name in animators
    }


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="the checkpoint the export was made from")
    parser.add_argument("export_dir", help="its export folder (tools/export_onnx.py)")
    parser.add_argument("videos", nargs="+", help="held-out videos or frame folders")
    args = parser.parse_args(argv)
    from lmtk.checkpoint import CheckpointError

    try:
        results = compare(args.checkpoint, args.export_dir, args.videos)
    except (CheckpointError, OSError, ValueError) as error:
        print_error(error)
        return 1
    print(f"{'backend':22s} {'PSNR vs PyTorch':>16s} {'recon L1':>9s}  ({len(args.videos)} videos)")
    for name, values in results.items():
        print(f"{name:22s} {values['psnr_vs_pytorch']:13.2f} dB {values['l1']:9.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
