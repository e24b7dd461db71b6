"""lmtk studio: a web page to animate an image, edit it along the motion directions and drive it live.

Example::

    python tools/studio.py --checkpoint vox.pt                  # then open http://127.0.0.1:7860
    python tools/studio.py --checkpoint work_dirs/lia_synthetic_m20 --host 0.0.0.0 --port 8080
    python tools/studio.py --checkpoint vox.pt --backend onnxruntime --export-dir vox_onnx --int8  # CPU: faster

Needs ``pip install -e .[studio]``. Runs offline; see docs/studio.md.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

from lmtk.cli import (  # noqa: E402
    ArgumentParser,
    add_backend_arguments,
    add_trust_checkpoint_argument,
    available_device,
    backend_options,
    export_note,
    positive_float,
    print_error,
    refuse_inert_backend_options,
    sigterm_as_interrupt,
)
from lmtk.registry import RegistryError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="lmtk or published LIA/LIA-X checkpoint, a training work dir (its newest checkpoint), or a config",
    )
    add_trust_checkpoint_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    parser.add_argument("--device", type=available_device, default="cpu", help="cpu, cuda, ... (default cpu)")
    parser.add_argument(
        "--max-seconds", type=positive_float, default=60.0, help="longest driving video accepted (default 60)"
    )
    parser.add_argument(
        "--models-dir",
        help="folder of checkpoints offered by the Model tab (default: the checkpoint's folder)",
    )
    add_backend_arguments(parser)
    args = parser.parse_args(argv)
    refuse_inert_backend_options(parser, args)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be 1-65535, got {args.port}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from lmtk.studio.server import serve
    except ImportError as error:
        print_error(ImportError(f"the studio needs gradio: pip install -e .[studio] ({error})"))
        return 1
    note = export_note(args, args.checkpoint)
    if note:
        print(f"note: {note}", file=sys.stderr)
    try:
        with sigterm_as_interrupt():
            serve(
                args.checkpoint,
                host=args.host,
                port=args.port,
                device=args.device,
                max_seconds=args.max_seconds,
                models_dir=args.models_dir,
                trust=args.trust_checkpoint,
                **backend_options(args),
            )
    except (OSError, ValueError, TypeError, RegistryError) as error:
        print_error(error)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    status = main()
    # The temporary folder is gone by now; gradio's server and queue threads may still hold the interpreter
    # open while a client keeps a connection, so the process ends here instead of waiting for them.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
