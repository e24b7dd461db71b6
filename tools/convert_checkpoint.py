"""Convert LIA checkpoints between the published format and lmtk's.

    python tools/convert_checkpoint.py vox.pt vox_lmtk.pth                         # published -> lmtk
    python tools/convert_checkpoint.py work_dirs/run/iter_5000.pth out.pt --to published

The published format is ``{'gen': generator_state, 'dis': discriminator_state}``; lmtk checkpoints embed
the model config so ``lmtk.load_model`` rebuilds the architecture.
"""

from __future__ import annotations

import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install


def main(argv=None) -> int:
    from lmtk.cli import ArgumentParser

    parser = ArgumentParser(description="Convert LIA checkpoints between published and lmtk formats")
    parser.add_argument("input", help="a published LIA checkpoint or an lmtk checkpoint")
    parser.add_argument("output", help="where to write the converted checkpoint")
    parser.add_argument(
        "--to", choices=["lmtk", "published"], default="lmtk", help="output format (default lmtk)"
    )
    parser.add_argument("--config", help="model config for an lmtk checkpoint that stores none")
    args = parser.parse_args(argv)
    if osp.isdir(args.output):
        parser.error(
            f"the output {args.output} is a folder; give a file name such as {osp.join(args.output, 'model.pth')}"
        )

    import lmtk
    from lmtk.checkpoint import CheckpointError, atomic_save, to_published

    try:
        model = lmtk.load_model(args.input, config=args.config)
        if args.to == "lmtk":
            lmtk.save_model(model, args.output)
        else:
            atomic_save(
                to_published(model.state_dict(), getattr(model, "published_extras", None)), args.output
            )
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({args.to} format)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
