"""Train an lmtk model from a config.

    python tools/train.py configs/lia/lia_vox_m20.py [--work-dir DIR] [--resume [CKPT|DIR] | --overwrite] [--amp]
        [--dtype bfloat16] [--channels-last] [--blur IMPL] [--compile] [--cfg-options key=value ...]
        [--launcher none|pytorch]

A work dir holds one run: a fresh run into one that holds a run needs ``--overwrite`` (docs/training.md).
The fast-path options (docs/performance.md) override the config's ``fast_paths`` entry; none changes the
checkpoint format, so a run may resume with other ones.

Multi-GPU: ``bash tools/dist_train.sh CONFIG NUM_GPUS [args]`` (torchrun + ``--launcher pytorch``).
"""

from __future__ import annotations

import argparse
import errno
import os
import os.path as osp
import re
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction

    from lmtk.cli import ArgumentParser, add_fast_path_arguments, add_trust_checkpoint_argument

    parser = ArgumentParser(description="Train an lmtk model")
    parser.add_argument("config", help="training config file, e.g. configs/lia/lia_vox_m20.py")
    parser.add_argument("--work-dir", help="where logs, checkpoints and sample grids go")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        help="resume from CKPT, or from the latest checkpoint in the work dir when no path is given",
    )
    add_trust_checkpoint_argument(parser)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="train afresh into a work dir that holds a run (its checkpoints are replaced as training goes)",
    )
    parser.add_argument(
        "--amp",
        action="store_true",
        help="float16 mixed precision (AmpOptimWrapper; needs a GPU): --dtype float16",
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        help="override config entries, e.g. train_dataloader.dataset.data_root=DIR model.size=64",
    )
    add_fast_path_arguments(parser, freeze=False)
    parser.add_argument("--freeze", action="store_true", help=argparse.SUPPRESS)  # refused below, with why
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)
    args = parser.parse_args(argv)
    if args.freeze:
        parser.error("--freeze is for inference only: training never freezes the weights")
    del args.freeze
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    return args


# the top-level settings mmengine's runner and lmtk read; a config's own variables may be anything else
_SETTINGS = (
    "auto_scale_lr", "custom_hooks", "data_preprocessor", "data_root", "default_hooks", "default_scope",
    "env_cfg", "experiment_name", "fast_paths", "launcher", "load_from", "log_level", "log_processor",
    "model", "model_wrapper_cfg", "optim_wrapper", "param_scheduler", "randomness", "resume", "test_cfg",
    "test_dataloader", "test_evaluator", "train_cfg", "train_dataloader", "val_cfg", "val_dataloader",
    "val_evaluator", "vis_backends", "visualizer", "work_dir",
)  # fmt: skip


def _config_notes(cfg) -> list[str]:
    """Edits that train without an error but likely not as meant."""
    import difflib

    notes = []
    for key in cfg.keys():
        close = difflib.get_close_matches(key, _SETTINGS, n=1, cutoff=0.75) if key not in _SETTINGS else []
        if close:
            notes.append(f"{key!r} is not a setting, so nothing reads it; did you mean {close[0]!r}?")
    loss = dict((cfg.get("model") or {}).get("loss") or {})
    perceptual = loss.get("perceptual")
    if (
        loss.get("type") == "lmtk.LIALoss.v1"
        and loss.get("perceptual_weight", 10.0)
        and isinstance(perceptual, dict)
        and perceptual.get("pretrained") is False
        and not perceptual.get("weights_path")
    ):
        notes.append(
            "the perceptual loss runs VGG19 with random weights (model.loss.perceptual.pretrained=False): "
            "fine for smoke runs, not the paper's loss (pretrained=True with the ImageNet weights for real training)"
        )
    return notes


def build_config(args: argparse.Namespace):
    from lmtk.cli import check_inert_fast_paths, fast_path_overrides
    from lmtk.config_file import read_config
    from lmtk.engine.schedules import resolve_max_iters
    from lmtk.fast_paths import FastPaths

    cfg = read_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    _check_max_iters(cfg)
    resolve_max_iters(cfg)  # a schedule's end="max_iters" follows train_cfg.max_iters as given here
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("work_dirs", osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if args.dtype not in (None, "float16"):
            raise ValueError(f"--amp is --dtype float16, which contradicts --dtype {args.dtype}")
        args.dtype = "float16"
    fast_paths = {**cfg.get("fast_paths", {}), **fast_path_overrides(args)}
    if fast_paths:
        paths = FastPaths.from_config(fast_paths)  # a bad value fails here, in one line
        for note in check_inert_fast_paths(paths, fast_path_overrides(args), training=True):
            print(f"note: {note}", file=sys.stderr)
        cfg.fast_paths = fast_paths
    if args.resume and args.overwrite:
        raise ValueError("--resume continues the run and --overwrite replaces it: give one of them")
    if args.resume:
        cfg.resume = True  # which checkpoint is decided when training starts (prepare_work_dir)
    for note in _config_notes(cfg):
        print(f"note: {note}", file=sys.stderr)
    import torch

    dist_cfg = cfg.get("env_cfg", {}).get("dist_cfg", {})
    if dist_cfg.get("backend") == "nccl" and not torch.cuda.is_available():
        dist_cfg["backend"] = "gloo"
    return cfg


def prepare_work_dir(cfg, args: argparse.Namespace) -> None:
    """Where training starts, the one place that reads the work dir: the checkpoint ``--resume`` means,
    a folder this process can write into, no live run holding it, and no run replaced without
    ``--overwrite``. (:func:`build_config` never looks, so a config can be built for inspection.)"""
    from lmtk.engine.work_dir_lock import check_work_dir_free

    if args.resume == "auto":
        cfg.load_from = _latest_checkpoint(cfg.work_dir)
    elif args.resume:
        cfg.load_from = _checkpoint_to_resume(args.resume)
    _check_work_dir(cfg.work_dir)
    if os.environ.get("RANK", "0") == "0":  # the launch's main process, which holds the work dir
        check_work_dir_free(cfg.work_dir)
        if not cfg.get("resume"):
            _refuse_to_overwrite(cfg.work_dir, args.overwrite)


def _check_max_iters(cfg) -> None:
    """The run's length must be a whole number of iterations: 0 or less trained nothing without a word, and
    a word failed deep in mmengine with a message that named no option."""
    value = (cfg.get("train_cfg") or {}).get("max_iters")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(
            f"train_cfg.max_iters must be a positive whole number of iterations, got {value!r}; "
            "e.g. --cfg-options train_cfg.max_iters=1000"
        )


def _latest_checkpoint(work_dir: str) -> str:
    """``--resume`` without a path: the checkpoint that ``WORK_DIR/last_checkpoint`` names."""
    if not osp.isfile(osp.join(work_dir, "last_checkpoint")):
        raise FileNotFoundError(
            f"--resume found no checkpoint to resume in {work_dir} (it has no last_checkpoint file); "
            "name the run's folder with --work-dir DIR or the checkpoint with --resume PATH"
        )
    return _checkpoint_to_resume(work_dir)  # an empty record or a missing file: one line


def _checkpoint_to_resume(path: str) -> str:
    """``--resume PATH``: a checkpoint file, or a run's work dir standing for its newest checkpoint."""
    if "://" in path:
        return path
    from lmtk.checkpoint import checkpoint_path

    return str(checkpoint_path(path))  # one-line CheckpointError (a ValueError) when there is none


def _check_work_dir(work_dir: str) -> None:
    """The work dir must be a folder this process can write into, checked before the model is built."""
    if osp.exists(work_dir) and not osp.isdir(work_dir):
        raise ValueError(f"the work dir {work_dir} is a file; choose another --work-dir")
    from lmtk.cli import missing_folders

    made = missing_folders(work_dir)
    try:
        os.makedirs(work_dir, exist_ok=True)
        probe = osp.join(work_dir, f".write_test.{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
        for folder in made:  # the runner makes them again; a start that fails then leaves nothing
            os.rmdir(folder)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ValueError(
            f"cannot write into the work dir {work_dir}: {reason}; choose another --work-dir"
        ) from None


def _refuse_to_overwrite(work_dir: str, overwrite: bool) -> None:
    """A fresh run into a work dir that holds a run would replace its checkpoints and ``last_checkpoint``
    as it goes; it needs ``--overwrite`` (or ``--resume`` to continue instead). Nothing is removed here:
    the run's ``last_checkpoint`` goes once training starts (``AtomicCheckpointHook``), so a start that
    fails leaves the earlier run as it was."""
    from lmtk.checkpoint import CheckpointError, checkpoint_path

    try:
        latest = checkpoint_path(work_dir)
    except CheckpointError:
        return  # no run there, or one whose checkpoints are gone
    if not overwrite:
        raise ValueError(
            f"{work_dir} already holds a run (its newest checkpoint: {latest.name}); continue it with --resume, "
            f"train into another --work-dir, or replace it with --overwrite"
        )


def _is_user_error(error: Exception) -> bool:
    """Whether ``error`` is a mistake in the command line or config, which one line explains."""
    if isinstance(error, TypeError):  # a config entry the component does not take, or one it needs
        return (
            re.search(r"unexpected keyword argument|missing \d+ required|Cannot build", str(error))
            is not None
        )
    return True


def _init_cpu_distributed(cfg) -> None:
    """mmengine's launcher always selects a CUDA device; on a machine without one, set up the process
    group (gloo) here so several CPU processes can train together."""
    import torch
    import torch.distributed as dist

    if cfg.launcher == "pytorch" and not torch.cuda.is_available() and not dist.is_initialized():
        backend = cfg.get("env_cfg", {}).get("dist_cfg", {}).get("backend", "gloo")
        dist.init_process_group(backend=backend)
        if cfg.get("model_wrapper_cfg") is not None:
            cfg.model_wrapper_cfg["device_ids"] = None  # CPU modules take no device ids


def main(argv=None) -> int:
    from lmtk.cli import error_message, interrupted_exit_code, interrupted_word, sigterm_as_interrupt
    from lmtk.datasets import NoReadableVideoError

    args = parse_args(argv)
    runner = cfg = None
    try:
        with sigterm_as_interrupt():
            cfg = build_config(args)
            prepare_work_dir(cfg, args)
            import lmtk.engine  # noqa: F401 - registers hooks and the optimizer constructor
            from lmtk.engine import LMTKRunner

            _init_cpu_distributed(cfg)
            runner = LMTKRunner.from_cfg(cfg)
            runner.trust_checkpoint = args.trust_checkpoint  # for --resume and the config's load_from
            runner.train()  # builds the dataset and resumes before the first iteration
    except (FileNotFoundError, ValueError, KeyError, TypeError) as error:
        # once training runs, such an error is a bug and its traceback is wanted
        if getattr(runner, "training_started", False) or not _is_user_error(error):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1
    except NoReadableVideoError as error:  # the data went bad while training: keep what was trained
        print(f"error: {error_message(error)}{_how_to_go_on(runner, cfg)}", file=sys.stderr)
        return 1
    except OSError as error:  # the disk is full, the work dir was made read-only, ...
        started = getattr(runner, "training_started", False)
        if started and error.errno not in _ENVIRONMENT_ERRORS:
            raise
        print(f"error: {error}{_how_to_go_on(runner, cfg) if started else ''}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as error:
        # the checkpoints written so far are complete (atomic writes); say what is kept
        at = f" during iteration {runner.iter + 1}" if getattr(runner, "training_started", False) else ""
        print(f"error: {interrupted_word(error)}{at}{_how_to_go_on(runner, cfg)}", file=sys.stderr)
        return interrupted_exit_code(error)
    return 0


# errors of the machine, not of the code: the checkpoints so far are intact, and the run can go on
_ENVIRONMENT_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM, errno.EIO}


def _how_to_go_on(runner, cfg) -> str:
    """What an interrupted run keeps: its newest checkpoint, to go on from with ``--resume``."""
    if not getattr(runner, "training_started", False):
        return ""
    from lmtk.checkpoint import CheckpointError, checkpoint_path

    try:
        latest = checkpoint_path(cfg.work_dir)
    except CheckpointError:
        return "; no checkpoint was written yet, so nothing of this run is kept"
    return f"; the newest checkpoint is {latest}: continue from it with --resume"


if __name__ == "__main__":
    sys.exit(main())
