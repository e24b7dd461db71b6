"""Command-line helpers shared by the tools: one-line errors and checked argument types."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "ArgumentParser",
    "Terminated",
    "add_backend_arguments",
    "add_device_argument",
    "add_fast_path_arguments",
    "add_model_arguments",
    "add_smoothing_arguments",
    "backend_options",
    "add_trust_checkpoint_argument",
    "available_device",
    "check_inert_fast_paths",
    "finite_float",
    "fast_path_overrides",
    "frame_index",
    "interrupted_exit_code",
    "interrupted_word",
    "missing_folders",
    "output_folder",
    "positive_float",
    "positive_int",
    "print_error",
    "refuse_inert_backend_options",
    "refuse_inert_fast_path_options",
    "sigterm_as_interrupt",
    "smoothing_filter",
]


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad option as one ``error:`` line (exit code 2), without the usage dump."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def _checked(text: str, convert, accept, expected: str, rejected: str | None = None):
    """``convert(text)`` if it parses and ``accept`` takes it, else argparse's one-line refusal."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not accept(value):
        raise argparse.ArgumentTypeError(f"expected {rejected or expected}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    return _checked(text, int, lambda v: v >= 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    return _checked(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    return _checked(text, float, lambda v: 0 < v < math.inf, "a positive number")


def finite_float(text: str) -> float:
    """An argparse type: a number that is not NaN or infinite."""
    return _checked(text, float, math.isfinite, "a number", "a finite number")


def frame_index(text: str) -> int:
    """An argparse type: an integer >= 0."""
    return _checked(text, int, lambda v: v >= 0, "a frame index", "a frame index >= 0")


def available_device(text: str) -> str:
    """An argparse type: a device this machine has (``cpu``, ``cuda``, ``cuda:1``, ...), returned as given.

    Checked when parsed so that a missing GPU is one line naming the fix, not a traceback from deep in
    model loading.
    """
    from lmtk.apis.device import check_device

    try:
        check_device(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def output_file(text: str) -> str:
    """An argparse type: a file to write, in a folder that exists.

    Checked when parsed: writing would otherwise fail after the work, and lose it.
    """
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a folder; name a file in it, e.g. {path / 'report.json'}"
        )
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {path.parent} does not exist; create it first")
    return text


def output_folder(text: str) -> str:
    """An argparse type: a folder to write into, which may not exist yet but is not (inside) a file.

    Checked when parsed: ``mkdir`` would otherwise fail with a traceback after the model has run.
    """
    path = Path(text)
    for existing in (path, *path.parents):
        if existing.exists():
            if not existing.is_dir():
                what = "is a file" if existing == path else f"is inside {existing}, which is a file"
                raise argparse.ArgumentTypeError(f"{text} {what}; give a folder")
            break
    return text


def missing_folders(path: str | os.PathLike) -> list[Path]:
    """The folders that making ``path`` (with its parents) would create, deepest first: what to remove
    again when the work that needed it fails."""
    path = Path(os.path.abspath(path))
    return [folder for folder in (path, *path.parents) if not folder.exists()]


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler's stop), raised as an interrupt so that the same clean-up runs."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated`, a ``KeyboardInterrupt``: partial files are
    removed and the tool says how to go on, as for Ctrl-C (Python's default ends at once, leaving them)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_exit_code(error: KeyboardInterrupt) -> int:
    """The shell's code for a process ended by the signal: 143 for SIGTERM, 130 for Ctrl-C."""
    return 128 + (signal.SIGTERM if isinstance(error, Terminated) else signal.SIGINT)


def interrupted_word(error: KeyboardInterrupt) -> str:
    return "terminated" if isinstance(error, Terminated) else "interrupted"


def error_message(error: BaseException) -> str:
    """The message of ``error`` on one line; of an error re-raised from a DataLoader worker, the worker's
    own message without the traceback that PyTorch puts before it."""
    text = str(error)
    if "Original Traceback" in text:
        text = text.rstrip().splitlines()[-1].split(f"{type(error).__name__}: ", 1)[-1]
    return " ".join(text.split())


def error_reason(error: BaseException) -> str:
    """The first line of ``error``'s message, or its type's name when it has none: the reason in
    parentheses of an lmtk error raised from a library's own (``cannot use device cuda (...)``)."""
    return (str(error).strip() or type(error).__name__).splitlines()[0]


def print_error(error: BaseException) -> None:
    """Report ``error`` on stderr as one ``error:`` line (see :func:`error_message`)."""
    print(f"error: {error_message(error)}", file=sys.stderr)


def add_trust_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    """``--trust-checkpoint``, for a tool that reads a checkpoint (``args.trust_checkpoint``): see
    :func:`lmtk.checkpoint.load_checkpoint_file`."""
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="read a checkpoint that needs more than weights and training state to unpickle, and run the "
        "config stored in it: either can run code, so only for a file you trust (README: Sharing models safely)",
    )


#: ``--checkpoint``'s help: what :func:`lmtk.load_model` takes
CHECKPOINT_HELP = "lmtk or published LIA checkpoint, a training work dir (its newest checkpoint), or a config"


def add_model_arguments(parser: argparse.ArgumentParser, checkpoint_help: str = CHECKPOINT_HELP) -> None:
    """``--checkpoint`` (required), ``--config``, ``--trust-checkpoint`` and ``--device``: what a tool
    passes to ``lmtk.load_model(args.checkpoint, config=args.config, device=args.device,
    trust=args.trust_checkpoint)``."""
    parser.add_argument("--checkpoint", required=True, help=checkpoint_help)
    parser.add_argument("--config", help="config whose model overrides the checkpoint's architecture")
    add_trust_checkpoint_argument(parser)
    add_device_argument(parser)


def add_device_argument(parser: argparse.ArgumentParser, default: str = "cpu") -> None:
    """``--device``, checked when parsed (:func:`available_device`)."""
    parser.add_argument(
        "--device", type=available_device, default=default, help=f"cpu, cuda, cuda:1, ... (default {default})"
    )


def add_fast_path_arguments(
    parser: argparse.ArgumentParser, dtype: bool = True, freeze: bool = True
) -> argparse._ArgumentGroup:
    """The fast-path switches of :class:`lmtk.fast_paths.FastPaths` as options (default: not given,
    so a config's ``fast_paths`` entry stays in force; ``--no-channels-last`` and the like switch one off);
    read them back with :func:`fast_path_overrides`. The options of earlier versions fail with what
    replaced them.

    ``dtype=False`` leaves out ``--dtype`` (for a tool that has its own), ``freeze=False`` leaves out
    ``--freeze`` (inference only)."""
    from .fast_paths import BLUR_IMPLS, COMPILE_MODES, DTYPES

    group = parser.add_argument_group("fast paths (docs/performance.md)")
    if dtype:
        group.add_argument(
            "--dtype", choices=tuple(DTYPES), default=None, help="autocast dtype (default float32)"
        )
    group.add_argument(
        "--channels-last", action=argparse.BooleanOptionalAction, default=None,
        help="channels_last memory format",
    )  # fmt: skip
    group.add_argument(
        "--blur", choices=BLUR_IMPLS, default=None,
        help="how the resampling layers' FIR blur runs: depthwise (the reference, default; fastest on a CPU), "
        "folded into the convolutions (fastest eager on a GPU), separable (fastest with --compile on a GPU) or "
        "subpixel (upsampling without transposed convolutions: the int8 ONNX export's form)",
    )  # fmt: skip
    group.add_argument(
        "--compile", nargs="?", const="default", choices=COMPILE_MODES, default=None,
        help="torch.compile the networks (the first calls compile: seconds on a GPU, minutes on a CPU); "
        "--no-compile: eager",
    )  # fmt: skip
    group.add_argument(
        "--no-compile", dest="compile", action="store_const", const=False, help=argparse.SUPPRESS
    )
    if freeze:
        group.add_argument(
            "--freeze", action=argparse.BooleanOptionalAction, default=None,
            help="with --compile: weights as constants (inference; prepacked convolutions on a CPU)",
        )  # fmt: skip
    for option, (nargs, replacement) in REMOVED_FAST_PATH_OPTIONS.items():
        group.add_argument(
            option, nargs=nargs, action=_RemovedOption, help=argparse.SUPPRESS, replacement=replacement
        )
    return group


# the fast-path options of earlier versions: (their nargs, what replaced them)
REMOVED_FAST_PATH_OPTIONS = {
    "--fused-fir": ("?", "use --blur folded (the up/down split was dropped: docs/performance.md)"),
    "--no-fused-fir": (0, "use --blur depthwise (the default)"),
    "--fused-upsample": ("?", "use --blur folded (the phase form of the folded upsampling was dropped)"),
    "--separable-fir": (0, "use --blur separable"),
    "--no-separable-fir": (0, "use --blur depthwise (the default)"),
    "--low-precision-heads": (0, "the flow/RGB heads and the warp sampling always run in float32"),
}


class _RemovedOption(argparse.Action):
    """An option of an earlier version: a one-line error saying what replaced it."""

    def __init__(self, option_strings, dest, replacement: str, **kwargs) -> None:
        super().__init__(option_strings, argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs)
        self.replacement = replacement

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(f"{option_string} was removed: {self.replacement}")


# what an option that would change nothing says, for the fields of FastPaths.inert_settings
_INERT_OPTION_ERRORS = {"freeze": "--freeze only acts on compiled graphs: add --compile"}


def check_inert_fast_paths(paths, given: dict, training: bool = False) -> list[str]:
    """Settings of ``paths`` (a :class:`~lmtk.fast_paths.FastPaths`) that would change nothing.

    One given on the command line (a field in ``given``, from :func:`fast_path_overrides`) raises a
    ``ValueError`` that names the option and its fix; one a config set comes back as a note.
    """
    notes = []
    for field, reason in paths.inert_settings(training).items():
        if field in given:
            if training and field == "freeze":
                raise ValueError(f"--freeze {reason}")
            raise ValueError(_INERT_OPTION_ERRORS[field])
        notes.append(
            f"the config's fast_paths {field}={getattr(paths, field)!r} {reason}; it changes nothing here"
        )
    return notes


def refuse_inert_fast_path_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """For a tool whose fast paths come from its command line alone: an option that would change
    nothing is a ``parser.error`` naming the fix."""
    from .fast_paths import FastPaths

    given = fast_path_overrides(args)
    try:
        check_inert_fast_paths(FastPaths(**given), given)
    except ValueError as error:
        parser.error(str(error))


def fast_path_option(field: str, value: object = True) -> str:
    """The command-line option that gives a ``FastPaths`` field ``value`` (a switch set to False is
    ``--no-...``)."""
    return ("--no-" if value is False else "--") + field.replace("_", "-")


def fast_path_overrides(args: argparse.Namespace) -> dict:
    """The fast-path options given on the command line, as ``FastPaths`` fields (absent ones left out;
    a tool without them has none)."""
    values = {
        "dtype": getattr(args, "dtype", None),
        "channels_last": getattr(args, "channels_last", None),
        "blur": getattr(args, "blur", None),
        "compile": getattr(args, "compile", None),
        "freeze": getattr(args, "freeze", None),
    }
    return {key: value for key, value in values.items() if value is not None}


def add_backend_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """``--backend``, ``--export-dir`` and ``--int8`` (docs/deploy.md); read back with :func:`backend_options`
    after :func:`refuse_inert_backend_options`."""
    from .apis.animator import BACKENDS

    group = parser.add_argument_group("backend (docs/deploy.md)")
    group.add_argument(
        "--backend", choices=BACKENDS, default="pytorch",
        help="pytorch (default) or onnxruntime (the checkpoint exported, or an export folder)",
    )  # fmt: skip
    group.add_argument(
        "--export-dir",
        help="onnxruntime: the export folder to use, or to export the checkpoint into (default: a temporary one)",
    )
    group.add_argument(
        "--int8", action="store_true", help="onnxruntime: the int8 motion and synthesis graphs"
    )
    return group


def refuse_inert_backend_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options of one backend given for the other are a ``parser.error`` naming the fix."""
    if args.backend == "pytorch":
        given = [name for name, on in (("--export-dir", args.export_dir), ("--int8", args.int8)) if on]
        if given:
            parser.error(f"{', '.join(given)} is for --backend onnxruntime")
        return
    overrides = fast_path_overrides(args)
    if overrides.get("dtype") == "float32":
        del overrides["dtype"]
    if overrides:
        given = ", ".join(fast_path_option(field, value) for field, value in overrides.items())
        parser.error(
            f"the onnxruntime backend runs the exported float32 (or --int8) graphs: {given} is for --backend pytorch"
        )


def export_note(args: argparse.Namespace, checkpoint: str | os.PathLike) -> str | None:
    """What to tell the user before the onnxruntime backend exports ``checkpoint`` on the fly (it takes a
    while, silently); None when nothing is exported: the PyTorch backend, or an export folder to use."""
    from .apis.onnx_backend import is_export_folder

    if getattr(args, "backend", "pytorch") != "onnxruntime" or not Path(checkpoint).exists():
        return None  # a missing checkpoint is the Animator's error
    if is_export_folder(checkpoint):
        return None
    folder = Path(args.export_dir) if args.export_dir else None
    if folder is not None and folder.is_dir() and any(folder.iterdir()):
        return None
    where = folder or "a temporary folder"
    return (
        f"exporting {checkpoint} to ONNX into {where} first (seconds; with --int8 a minute or two at 256 px, "
        f"calibrated on synthetic images: tools/export_onnx.py --calibration VIDEO does better)"
    )


def backend_options(args: argparse.Namespace) -> dict:
    """The :class:`~lmtk.apis.Animator` arguments of :func:`add_backend_arguments`' options."""
    if args.backend == "pytorch":
        return {}
    return dict(backend=args.backend, export_dir=args.export_dir, int8=args.int8)


def add_smoothing_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """``--smooth`` and the One-Euro filter's parameters; read back with :func:`smoothing_filter`."""
    from .apis.smoothing import OneEuroFilter

    defaults = OneEuroFilter()
    group = parser.add_argument_group("motion smoothing (docs/deploy.md)")
    group.add_argument("--smooth", action="store_true", help="One-Euro filter on the motion magnitudes")
    group.add_argument(
        "--smooth-min-cutoff", type=positive_float, default=None,
        help=f"--smooth: cutoff of still motion in Hz, lower is smoother (default {defaults.min_cutoff})",
    )  # fmt: skip
    group.add_argument(
        "--smooth-beta", type=float, default=None,
        help=f"--smooth: how fast the cutoff rises with speed, higher lags less (default {defaults.beta})",
    )  # fmt: skip
    group.add_argument(
        "--smooth-d-cutoff", type=positive_float, default=None,
        help=f"--smooth: cutoff of the speed estimate in Hz (default {defaults.d_cutoff})",
    )  # fmt: skip
    return group


def smoothing_filter(parser: argparse.ArgumentParser, args: argparse.Namespace, fps: float = 25.0):
    """The ``OneEuroFilter`` of ``--smooth`` (None without it); a parameter without ``--smooth`` or out
    of range is a ``parser.error``."""
    from .apis.smoothing import OneEuroFilter

    given = {
        name: value
        for name in ("min_cutoff", "beta", "d_cutoff")
        if (value := getattr(args, f"smooth_{name}")) is not None
    }
    if not args.smooth:
        if given:
            parser.error(f"--smooth-{next(iter(given)).replace('_', '-')} needs --smooth")
        return None
    try:
        return OneEuroFilter(fps=fps, **given)
    except ValueError as error:
        parser.error(f"--smooth: {error}")
