"""Train an lmtk model from a config.

    python tools/train.py configs/lia/lia_vox_m20.py [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--dtype bfloat16] [--channels-last] [--fused-fir] [--compile] [--cfg-options key=value ...]
        [--launcher none|pytorch]

The fast-path options (docs/performance.md) override the config's ``fast_paths`` entry; none changes the
checkpoint format, so a run may resume with other ones.

Multi-GPU: ``bash tools/dist_train.sh CONFIG NUM_GPUS [args]`` (torchrun + ``--launcher pytorch``).
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import re
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction

    from lmtk.cli import ArgumentParser, add_fast_path_arguments

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
    from lmtk.apis.fast_paths import FastPaths
    from lmtk.cli import check_inert_fast_paths, fast_path_overrides
    from lmtk.config_file import read_config

    cfg = read_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
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
    if args.resume == "auto":
        _check_latest_checkpoint(cfg.work_dir)
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        if "://" not in args.resume and not osp.isfile(args.resume):
            raise FileNotFoundError(f"checkpoint to resume not found: {args.resume}")
        cfg.resume, cfg.load_from = True, args.resume
    for note in _config_notes(cfg):
        print(f"note: {note}", file=sys.stderr)
    import torch

    dist_cfg = cfg.get("env_cfg", {}).get("dist_cfg", {})
    if dist_cfg.get("backend") == "nccl" and not torch.cuda.is_available():
        dist_cfg["backend"] = "gloo"
    return cfg


def _check_latest_checkpoint(work_dir: str) -> None:
    """``--resume`` without a path needs the checkpoint that ``WORK_DIR/last_checkpoint`` names."""
    record = osp.join(work_dir, "last_checkpoint")
    latest = ""
    if osp.isfile(record):
        with open(record) as file:
            latest = file.read().strip()
    if not latest:
        raise FileNotFoundError(
            f"--resume found no checkpoint to resume in {work_dir} (it has no last_checkpoint file); "
            "name the run's folder with --work-dir DIR or the checkpoint with --resume PATH"
        )
    if "://" not in latest and not osp.isfile(latest):
        raise FileNotFoundError(
            f"--resume: {record} names {latest}, which does not exist; pass a checkpoint with --resume PATH"
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
    args = parse_args(argv)
    runner = None
    try:
        cfg = build_config(args)
        import lmtk.engine  # noqa: F401 - registers hooks and the optimizer constructor
        from lmtk.engine import LMTKRunner

        _init_cpu_distributed(cfg)
        runner = LMTKRunner.from_cfg(cfg)
        runner.train()  # builds the dataset and resumes before the first iteration
    except (FileNotFoundError, ValueError, KeyError, TypeError) as error:
        # once training runs, such an error is a bug and its traceback is wanted
        if getattr(runner, "training_started", False) or not _is_user_error(error):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # the checkpoints written so far are complete (atomic writes); say how to go on from them
        at = f" at iteration {runner.iter}" if getattr(runner, "training_started", False) else ""
        print(f"error: interrupted{at}; continue from the last checkpoint with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
