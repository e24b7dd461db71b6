"""Convert LIA and LIA-X checkpoints between the published formats and lmtk's.

    python tools/convert_checkpoint.py vox.pt vox_lmtk.pth                         # published -> lmtk
    python tools/convert_checkpoint.py lia-x.pt liax_lmtk.pth                      # LIA-X -> lmtk
    python tools/convert_checkpoint.py work_dirs/run/iter_5000.pth out.pt --to published
    python tools/convert_checkpoint.py work_dirs/run model.safetensors --to safetensors  # to share

LIA's published format is ``{'gen': generator_state, 'dis': discriminator_state}``, LIA-X's a bare
generator state dict (``lia-x.pt``); ``--to published`` writes the one of the model's kind. lmtk
checkpoints embed the model config so ``lmtk.load_model`` rebuilds the architecture; safetensors holds the
weights and the model config as JSON, and loading it can never run code: the format to share a model in.
An existing output is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install


def _check_published_round_trip(model, published: dict) -> None:
    """Refuse a model the published format cannot describe.

    That format stores tensors only; the architecture is inferred from their shapes with the published
    code's settings, so a model trained with other settings (e.g. ``align_corners=True`` in the warper,
    as the synthetic quickstart config) would load back as a different function without any error.
    """
    import tempfile

    import torch

    import lmtk
    from lmtk.checkpoint import atomic_save

    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, "published.pt")
        atomic_save(published, path)
        reloaded = lmtk.load_model(path)
    generator = torch.Generator().manual_seed(0)
    source, driving = (
        torch.rand(1, 3, model.size, model.size, generator=generator) * 2 - 1 for _ in range(2)
    )
    model.eval()
    with torch.inference_mode():
        ours = model.transfer(source, driving, mode="absolute")
        theirs = reloaded.transfer(source, driving, mode="absolute")
    error = float((ours - theirs).norm() / ours.norm().clamp_min(1e-12))
    if error > 1e-4:
        raise ValueError(
            f"the published format cannot hold this model: loaded back with the published architecture it "
            f"computes another function (relative difference {error:.2g}), because its config uses settings "
            "the published code does not have; keep the lmtk checkpoint"
        )


def main(argv=None) -> int:
    from lmtk.cli import ArgumentParser, add_trust_checkpoint_argument

    parser = ArgumentParser(
        description="Convert LIA and LIA-X checkpoints between the published, lmtk and safetensors formats"
    )
    parser.add_argument(
        "input", help="a published LIA or LIA-X checkpoint, an lmtk checkpoint or a training work dir"
    )
    parser.add_argument("output", help="where to write the converted checkpoint")
    parser.add_argument(
        "--to",
        choices=["lmtk", "published", "safetensors"],
        default=None,
        help="output format (default: safetensors for a .safetensors output, else lmtk)",
    )
    parser.add_argument("--config", help="model config for an lmtk checkpoint that stores none")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_trust_checkpoint_argument(parser)
    args = parser.parse_args(argv)
    from lmtk.checkpoint import SAFETENSORS_SUFFIX, TORCH_SUFFIXES
    from lmtk.config_file import CONFIG_SUFFIXES

    if osp.splitext(args.input)[1] in CONFIG_SUFFIXES:
        parser.error(
            f"the input {args.input} is a config, not a checkpoint: it holds no trained weights "
            "(convert a checkpoint; --config gives the architecture of one that stores none)"
        )
    if osp.isdir(args.output):
        parser.error(
            f"the output {args.output} is a folder; give a file name such as {osp.join(args.output, 'model.pth')}"
        )
    suffix = osp.splitext(args.output)[1]
    if args.to is None:
        args.to = "safetensors" if suffix == SAFETENSORS_SUFFIX else "lmtk"
    wanted = (SAFETENSORS_SUFFIX,) if args.to == "safetensors" else TORCH_SUFFIXES
    if suffix not in wanted:
        parser.error(
            f"the output {args.output} is not named as a checkpoint: end it with {' or '.join(wanted)} "
            f"(for --to {args.to})"
        )
    if osp.lexists(args.output) and not args.overwrite:
        parser.error(f"the output {args.output} exists; pass --overwrite to replace it, or name another file")

    import lmtk
    from lmtk.checkpoint import CheckpointError, CheckpointWriteError, atomic_save
    from lmtk.models import LIAX
    from lmtk.models.lia_keys import to_published
    from lmtk.models.liax_keys import to_liax

    try:
        model = lmtk.load_model(args.input, config=args.config, trust=args.trust_checkpoint)
        if args.to in ("lmtk", "safetensors"):
            lmtk.save_model(model, args.output, format=args.to)
        else:
            if isinstance(model, LIAX):  # LIA-X's own format: a bare generator state dict
                published = to_liax(model.state_dict())
            else:
                published = to_published(model.state_dict(), getattr(model, "published_extras", None))
            _check_published_round_trip(model, published)
            atomic_save(published, args.output)
    except (CheckpointError, CheckpointWriteError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({args.to} format)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
