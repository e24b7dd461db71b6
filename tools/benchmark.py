"""Measure animation frames/s, training images/s and peak memory of an LIA config or checkpoint.

Example::

    # the published demo loop and the batched animator, side by side, on this CPU
    python tools/benchmark.py configs/lia/lia_vox_m20.py --task animate --reference --threads 1 \\
        --batch-size 1 --frames 4 --iters 1
    # the fast paths on a GPU, and a training step at batch 32
    python tools/benchmark.py configs/lia/lia_vox_m20.py --device cuda --task all --dtype bfloat16 \\
        --channels-last --blur folded --batch-size 64 --train-batch-size 32 --reference --json out.json
    # the PyTorch and onnxruntime (float32, int8) Animators against the demo loop, with per-frame latency
    python tools/benchmark.py vox.pt --task animate --reference --threads 2 --batch-size 1 \\
        --backend pytorch onnxruntime onnxruntime-int8 --latency-frames 32
    # how fast the config's training data loader delivers batches (compare with the training images/s)
    python tools/benchmark.py configs/lia/lia_vox_m20.py --task data --workers 8 \\
        --cfg-options train_dataloader.dataset.data_root=data/vox

Inputs are synthetic images of the model size (the cost is that of real ones). A config may carry
``fast_paths = dict(dtype=..., channels_last=..., blur=..., compile=..., freeze=...)``; the command line
overrides it. Without VGG19 weights on this machine, training uses random VGG19 weights (the cost is the
same). The measuring code lives in ``benchmarks/`` (not installed: run this from a checkout). See
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from pathlib import Path

# the checkout's root: benchmarks/ (never installed) and, without an install, lmtk
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from benchmarks.data_loading import benchmark_data_loading  # noqa: E402
from benchmarks.speed import (  # noqa: E402
    BACKEND_RUNS,
    environment,
    format_table,
    format_top_operations,
    load_benchmark_model,
    run_benchmarks,
)
from lmtk.checkpoint import CheckpointError  # noqa: E402
from lmtk.cli import (  # noqa: E402
    ArgumentParser,
    add_fast_path_arguments,
    add_trust_checkpoint_argument,
    available_device,
    check_inert_fast_paths,
    fast_path_option,
    fast_path_overrides,
    non_negative_int,
    output_file,
    positive_int,
    print_error,
)
from lmtk.datasets import NoReadableVideoError  # noqa: E402
from lmtk.fast_paths import FastPaths  # noqa: E402
from lmtk.registry import RegistryError  # noqa: E402

TASKS = {"animate": ("animate",), "train": ("train",), "all": ("animate", "train"), "data": ("data",)}
# options that only the model's timing reads, and those that only the data loader's does
MODEL_TIMING = (
    "batch_size",
    "frames",
    "iters",
    "warmup",
    "reference_frames",
    "profile",
    "cudnn_benchmark",
    "backend",
    "latency_frames",
    "export_dir",
)
DATA_TIMING = ("workers", "batches")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "model", help="a config (.py), a checkpoint (lmtk or published LIA) or a training work dir"
    )
    add_trust_checkpoint_argument(parser)
    parser.add_argument(
        "--task",
        choices=tuple(TASKS),
        default="animate",
        help="animate, train, all (both), or data: the config's training data loader alone (its batch "
        "size, or --train-batch-size; --workers, --batches)",
    )
    parser.add_argument(
        "--device", type=available_device, default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--batch-size", type=positive_int, default=16, help="animation frames per call")
    parser.add_argument("--train-batch-size", type=positive_int, default=None, help="default: --batch-size")
    add_fast_path_arguments(parser)
    parser.add_argument("--frames", type=positive_int, default=64, help="driving frames per timed iteration")
    parser.add_argument("--iters", type=positive_int, default=3, help="timed iterations")
    parser.add_argument("--warmup", type=non_negative_int, default=1, help="untimed iterations first")
    parser.add_argument("--reference", action="store_true", help="also time the published demo loop")
    parser.add_argument(
        "--backend",
        nargs="+",
        choices=BACKEND_RUNS,
        default=["pytorch"],
        help="animation backends timed one after the other (default pytorch; the onnxruntime ones run a "
        "temporary export, with --threads threads and no fast paths)",
    )
    parser.add_argument(
        "--export-dir",
        help="onnxruntime backends: the export folder of the model to time (made there if missing; default "
        "a temporary one)",
    )
    parser.add_argument(
        "--latency-frames",
        type=non_negative_int,
        default=0,
        help="also measure per-frame latency (p50/p95) of Animator.stream at batch 1 over N frames",
    )
    parser.add_argument(
        "--reference-frames", type=positive_int, default=None, help="default: min(frames, 16)"
    )
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN pick algorithms by timing")
    parser.add_argument(
        "--profile",
        type=positive_int,
        default=None,
        metavar="N",
        help="after timing, profile one more iteration and print its N most expensive operations "
        "(GPU kernels on a GPU)",
    )
    parser.add_argument(
        "--workers",
        type=non_negative_int,
        default=None,
        help="--task data: the loader's workers (default: the config's)",
    )
    parser.add_argument("--batches", type=positive_int, default=30, help="--task data: timed batches")
    parser.add_argument("--json", type=output_file, default=None, help="write the report here")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config entries")
    args = parser.parse_args(argv)
    tasks = TASKS[args.task]
    if args.task == "data":
        given = [fast_path_option(field, value) for field, value in fast_path_overrides(args).items()]
        given += ["--reference"] if args.reference else []
        given += [_option(name) for name in MODEL_TIMING if getattr(args, name) != parser.get_default(name)]
        if given:
            parser.error(
                f"--task data times the data loader alone: {', '.join(given)} change(s) nothing there "
                "(it takes --train-batch-size, --workers and --batches)"
            )
    else:
        for name in DATA_TIMING:
            if getattr(args, name) != parser.get_default(name):
                parser.error(f"{_option(name)} is for --task data (the training data loader)")
    if "animate" not in tasks and args.backend != ["pytorch"]:
        parser.error("--backend times animation: use --task animate or all")
    if args.export_dir and args.backend == ["pytorch"]:
        parser.error("--export-dir is for --backend onnxruntime or onnxruntime-int8")
    if args.freeze and "train" in tasks:
        parser.error(
            "--freeze bakes weights into inference graphs; training cannot use it (drop it or use --task animate)"
        )
    if args.dtype == "float16" and torch.device(args.device).type == "cpu":
        parser.error(
            "--dtype float16 is a CUDA path (the CPU computes it slowly, and training needs loss scaling); use bfloat16 on the CPU"
        )
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    tasks = TASKS[args.task]
    if args.task == "data":
        return _benchmark_data(args)
    try:
        model, fast_cfg, notes = load_benchmark_model(
            args.model, training="train" in tasks, cfg_options=args.cfg_options, trust=args.trust_checkpoint
        )
        paths = FastPaths.from_config(fast_cfg, **fast_path_overrides(args))
        notes += check_inert_fast_paths(paths, fast_path_overrides(args), training="animate" not in tasks)
    except (FileNotFoundError, ValueError, TypeError, RegistryError, CheckpointError) as error:
        print_error(error)
        raise SystemExit(2) from None
    report = run_benchmarks(
        model,
        args.device,
        tasks,
        paths,
        batch_size=args.batch_size,
        train_batch_size=args.train_batch_size,
        frames=args.frames,
        iters=args.iters,
        warmup=args.warmup,
        reference=args.reference,
        reference_frames=args.reference_frames,
        profile_top=args.profile or 0,
        backends=args.backend,
        latency_frames=args.latency_frames,
        export_dir=args.export_dir,
    )
    report["settings"].update(
        model=str(args.model),
        cfg_options=args.cfg_options,
        reference=args.reference,
        reference_frames=args.reference_frames,
        profile=args.profile,
    )
    report["notes"] = notes
    env = report["environment"]
    print(
        f"{env['device_name']} | torch {env['torch']} (CUDA {env['cuda']}) | threads {env['torch_threads']}"
    )
    print(format_table(report["results"], report["reference"]))
    for record in report["results"]:
        if record.get("top_operations"):
            print(format_top_operations(record))
    for record in report["results"]:
        if "latency_ms_p50" in record:
            print(
                f"per-frame latency at batch 1, {record['name']}: p50 {record['latency_ms_p50']:.1f} ms, "
                f"p95 {record['latency_ms_p95']:.1f} ms ({record['latency_frames']} frames)"
            )
    if report["speedup_vs_reference"] is not None:
        print(f"animation vs reference: {report['speedup_vs_reference']:.2f}x")
    for note in notes:
        print(f"note: {note}")
    _write_report(args.json, report)
    return report


def _write_report(path: str | None, report: dict) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(report, f, indent=2, default=str)


def _benchmark_data(args: argparse.Namespace) -> dict:
    from lmtk.config_file import CONFIG_SUFFIXES, read_config

    try:
        if Path(args.model).suffix not in CONFIG_SUFFIXES:
            raise ValueError(
                f"--task data reads a config's train_dataloader; {args.model} is not a config (.py)"
            )
        cfg = read_config(args.model)
        if args.cfg_options:
            cfg.merge_from_dict(dict(args.cfg_options))
        if not cfg.get("train_dataloader"):
            raise ValueError(f"{args.model} has no train_dataloader entry")
        record = benchmark_data_loading(
            cfg.train_dataloader,
            args.device,
            batches=args.batches,
            num_workers=args.workers,
            batch_size=args.train_batch_size,
        )
    except (FileNotFoundError, ValueError, TypeError, KeyError, RegistryError, NoReadableVideoError) as error:
        print_error(error)
        raise SystemExit(2) from None
    report = {
        "environment": environment(args.device),
        "settings": {"tasks": ["data"], "model": str(args.model), "cfg_options": args.cfg_options},
        "results": [record],
        "reference": None,
        "speedup_vs_reference": None,
        "notes": [],
    }
    env = report["environment"]
    print(f"{env['device_name']} | torch {env['torch']} | {env['cpu_count']} CPUs")
    print(format_table(report["results"]))
    print(f"dataset: {record['dataset']}")
    _write_report(args.json, report)
    return report


if __name__ == "__main__":
    main()
