"""Measuring LIA's speed: animation frames/s, training images/s and peak memory, under the fast paths.

``tools/benchmark.py`` is the command line of this module (docs/performance.md). It lives outside the
installed package: measuring is not part of the model or of making it fast.

Every number is a ratio to something measured in the same process, so one run tells how much each
switch buys on this machine:

- **reference**: what the published demo does: batch 1, the source re-encoded for every driving frame
  (``model.transfer(source, frame)`` per frame), float32, eager, NCHW, depthwise blur;
- **animation**: :class:`~lmtk.apis.Animator`'s path: the source encoded once, driving frames batched,
  only their motion code computed (the source's encoding is not timed: it is paid once per video);
- **training**: one full ``LIA.train_step`` (generator and discriminator updates, every loss term of the
  config, VGG19 pyramid included) with a real mmengine ``OptimWrapperDict``.

Each measurement runs under a :class:`~lmtk.fast_paths.FastPaths` (see :mod:`lmtk.fast_paths`:
autocast, channels_last, the blur's implementation, ``torch.compile``), switched on before and off after.

Timing waits for the device (``torch.cuda.synchronize``) before reading the clock, after warm-up
iterations that absorb cuDNN's algorithm search and compilation. Peak memory is
``torch.cuda.max_memory_allocated`` on CUDA and the process's peak resident set size on the CPU.

Example:
    >>> from lmtk.registry import build
    >>> model = build(dict(type="lmtk.LIA.v1", size=32, latent_dim=16, channel_base=128,
    ...     encoder=dict(type="lmtk.LIAEncoder.v1"), generator=dict(type="lmtk.FlowGenerator.v1"),
    ...     motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", num_directions=4))).eval()
    >>> record = benchmark_animation(model, batch_size=4, frames=4, iters=1, warmup=0)
    >>> record["frames"], record["unit"]
    (4, 'frames/s')
"""

from __future__ import annotations

import contextlib
import copy
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from mmengine.optim import OptimWrapperDict
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn

from lmtk.apis.animator import Animator
from lmtk.apis.loading import load_model
from lmtk.apis.numerics import synthetic_images
from lmtk.config_file import CONFIG_SUFFIXES
from lmtk.fast_paths import (
    FastPaths,
    apply_fast_paths,
    mixed_precision_optim_wrappers,
    model_network,
    reference_mode,
)
from lmtk.losses.perceptual import default_vgg19_weights_path
from lmtk.registry import build, check_registered_types

__all__ = [
    "BACKEND_RUNS",
    "benchmark_animation",
    "benchmark_reference",
    "benchmark_training",
    "count_host_syncs",
    "host_sync_sites",
    "environment",
    "exact_float32",
    "format_table",
    "format_top_operations",
    "load_benchmark_model",
    "peak_memory",
    "run_benchmarks",
    "stream_latency",
    "top_operations",
    "transfer_under",
]

# what run_benchmarks(backends=...) times: the PyTorch Animator, and the onnxruntime one in float32 or int8
BACKEND_RUNS = ("pytorch", "onnxruntime", "onnxruntime-int8")


# -------------------------------------------------------------------------------------- measuring
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device | str) -> dict:
    """``{"peak_memory_bytes": n, "peak_memory_kind": ...}``: CUDA max allocated since the last reset, or
    the process's peak resident set size on the CPU (for the whole process, never reset)."""
    device = torch.device(device)
    if device.type == "cuda":
        return {
            "peak_memory_bytes": torch.cuda.max_memory_allocated(device),
            "peak_memory_kind": "cuda_max_allocated",
        }
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in KiB on Linux
    return {
        "peak_memory_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
        "peak_memory_kind": "process_peak_rss",
    }


def _timed(fn: Callable[[], object], device: torch.device, iters: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def top_operations(fn: Callable[[], object], device: torch.device | str, top: int = 15) -> list[dict]:
    """Where one call of ``fn`` spends its time: the ``top`` entries by self time, from PyTorch's profiler.

    On a GPU the entries are the device's kernels (their names say which convolution, elementwise or
    sampling kernel ran); on a CPU the operators' host time. Each entry has its milliseconds, its share
    of the total and how many times it ran.
    """
    device = torch.device(device)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as profiler:
        fn()
        _sync(device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = sorted(profiler.key_averages(), key=lambda event: getattr(event, key), reverse=True)
    total = sum(getattr(event, key) for event in events) or 1.0
    return [
        {
            "name": event.key[:160],
            "ms": getattr(event, key) / 1e3,
            "share": getattr(event, key) / total,
            "count": event.count,
        }
        for event in events[:top]
        if getattr(event, key) > 0
    ]


def format_top_operations(record: Mapping) -> str:
    """The ``top_operations`` of a benchmark record as indented lines (empty if it has none)."""
    entries = record.get("top_operations") or []
    if not entries:
        return ""
    lines = [f"where one iteration of '{record['name']}' spends its time (self time, profiled):"]
    lines += [f"  {e['share']:6.1%} {e['ms']:9.2f} ms  x{e['count']:<4d} {e['name']}" for e in entries]
    return "\n".join(lines)


def _summary(times: Sequence[float], items: int) -> dict:
    ordered = sorted(times)
    return {
        "seconds_total": sum(times),
        "ms_per_iter_mean": 1000 * sum(times) / len(times),
        "ms_per_iter_median": 1000 * ordered[len(ordered) // 2],
        "items_per_iter": items,
        "throughput": items * len(times) / sum(times),
    }


def _percentiles(seconds: Sequence[float]) -> dict:
    ordered = sorted(seconds)

    def at(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {"latency_ms_p50": at(0.5), "latency_ms_p95": at(0.95), "latency_frames": len(ordered)}


def stream_latency(animator: Animator, source, frames: torch.Tensor, device: torch.device) -> dict:
    """Per-frame latency of :meth:`Animator.stream` at micro-batch 1: from a frame handed over to its
    result, p50 and p95 in milliseconds (after one untimed frame)."""
    handed = []

    def camera():
        for frame in frames:
            handed.append(time.perf_counter())
            yield frame

    seconds = []
    for result in animator.stream(source, camera(), mode="absolute", output="tensor"):
        _sync(device)
        seconds.append(time.perf_counter() - handed[len(seconds)])
        del result
    return _percentiles(seconds[1:] or seconds)


def benchmark_animation(
    model: nn.Module,
    device: torch.device | str = "cpu",
    paths: FastPaths | None = None,
    batch_size: int = 16,
    frames: int = 64,
    iters: int = 3,
    warmup: int = 1,
    seed: int = 0,
    profile_top: int = 0,
    backend: str = "pytorch",
    export_dir: str | os.PathLike | None = None,
    int8: bool = False,
    latency_frames: int = 0,
) -> dict:
    """Frames/s of :meth:`Animator.animate_frames` (absolute transfer) with ``paths`` applied.

    The source is encoded once, untimed; each timed iteration animates ``frames`` driving frames,
    ``batch_size`` per network call. The fast paths are switched off again afterwards. With
    ``profile_top``, one more iteration runs under the profiler and its ``top_operations`` are kept.
    ``backend="onnxruntime"`` times the export in ``export_dir`` (made there if missing; ``int8``: its
    int8 graphs) with as many onnxruntime threads as torch has, and no fast paths. ``latency_frames`` > 0
    adds the per-frame latency of :meth:`Animator.stream` at micro-batch 1 (:func:`stream_latency`).
    """
    device = torch.device(device)
    paths = paths or FastPaths()
    model = model.to(device).eval()
    onnx = backend == "onnxruntime"
    if onnx:
        paths = FastPaths()
        options = dict(backend=backend, export_dir=export_dir, int8=int8, threads=torch.get_num_threads())
    else:
        options = {}
    restore = apply_fast_paths(model, paths)
    try:
        animator = Animator(model, device=device, dtype=paths.dtype, batch_size=batch_size, **options)
        size = animator.size
        source = animator.encode_source(synthetic_images(1, size, device, paths.channels_last, seed))
        driving = synthetic_images(frames, size, device, paths.channels_last, seed + 1)
        _reset_peak(device)
        animate = lambda: animator.animate_frames(source, driving, mode="absolute")  # noqa: E731
        times = _timed(animate, device, iters, warmup)
        memory = peak_memory(device)
        profile = top_operations(animate, device, profile_top) if profile_top else None
        latency = {}
        if latency_frames:
            single = Animator(model, device=device, dtype=paths.dtype, batch_size=1, **options)
            stream_frames = synthetic_images(latency_frames + 1, size, device, paths.channels_last, seed + 2)
            latency = stream_latency(single, source, stream_frames, device)
    finally:
        restore()
    summary = _summary(times, frames)
    name = f"onnxruntime {'int8' if int8 else 'float32'}" if onnx else paths.describe()
    return {
        "task": "animate",
        "name": f"animate {name}",
        "backend": backend,
        "int8": int8,
        **latency,
        "batch_size": batch_size,
        "frames": frames,
        "iters": iters,
        "warmup": warmup,
        **asdict(paths),
        **summary,
        "unit": "frames/s",
        **memory,
        **({"top_operations": profile} if profile is not None else {}),
    }


def benchmark_reference(
    model: nn.Module, device: torch.device | str = "cpu", frames: int = 16, warmup: int = 2, seed: int = 0
) -> dict:
    """Frames/s of the published demo loop: ``model.transfer(source, frame)`` per frame, batch 1, fp32, eager.

    Runs under :func:`reference_mode`, so fast paths switched on elsewhere do not leak in.
    """
    device = torch.device(device)
    model = model.to(device).eval()
    with reference_mode(model), torch.inference_mode():
        size = model_network(model).size
        source = synthetic_images(1, size, device, seed=seed)
        driving = synthetic_images(frames, size, device, seed=seed + 1)
        for index in range(warmup):
            model.transfer(source, driving[index % frames : index % frames + 1])
        _sync(device)
        _reset_peak(device)
        per_frame = []
        for index in range(frames):
            start = time.perf_counter()
            model.transfer(source, driving[index : index + 1])
            _sync(device)
            per_frame.append(time.perf_counter() - start)
        seconds = sum(per_frame)
    return {
        "task": "animate",
        "name": "reference (demo loop: batch 1, source re-encoded per frame, fp32 eager)",
        "batch_size": 1,
        "frames": frames,
        "iters": 1,
        "warmup": warmup,
        **asdict(FastPaths()),
        "reference": True,
        "seconds_total": seconds,
        "ms_per_iter_mean": 1000 * seconds / frames,
        "ms_per_iter_median": 1000 * seconds / frames,
        "items_per_iter": 1,
        "throughput": frames / seconds,
        "unit": "frames/s",
        "frame_seconds": per_frame,
        **_percentiles(per_frame),
        **peak_memory(device),
    }


def _optim_wrapper(params, dtype: str, device: torch.device, lr: float, betas: tuple[float, float]):
    cfg = dict(type="OptimWrapper", optimizer=torch.optim.Adam(params, lr=lr, betas=betas))
    if dtype == "float16" and device.type != "cuda":
        cfg.update(type="AutocastOptimWrapper", dtype=dtype)  # loss scaling needs CUDA; time it without
    return OPTIM_WRAPPERS.build(mixed_precision_optim_wrappers(cfg, dtype))


def benchmark_training(
    model: nn.Module,
    device: torch.device | str = "cpu",
    paths: FastPaths | None = None,
    batch_size: int = 8,
    iters: int = 3,
    warmup: int = 1,
    lr: float = 0.002,
    betas: tuple[float, float] = (0.0, 0.99),
    seed: int = 0,
    profile_top: int = 0,
) -> dict:
    """Images/s of ``model.train_step`` (G and D updates, every loss of the model's loss set).

    Adam as in the paper (lr 0.002, betas (0, 0.99)) in an mmengine ``OptimWrapperDict``; bfloat16 runs
    under :class:`AutocastOptimWrapper`, float16 on CUDA under mmengine's ``AmpOptimWrapper``. The
    weights are changed by the steps. Peak memory covers the optimizer states (reset before warm-up).
    With ``profile_top``, one more step runs under the profiler and its ``top_operations`` are kept.
    """
    device = torch.device(device)
    paths = paths or FastPaths()
    if getattr(model, "loss", None) is None or getattr(model, "discriminator", None) is None:
        raise ValueError("training needs a model with a discriminator and a loss set")
    model = model.to(device).train()
    restore = apply_fast_paths(model, paths, training=True)
    try:
        _reset_peak(device)
        optim = OptimWrapperDict(
            generator=_optim_wrapper(model.generator.parameters(), paths.dtype, device, lr, betas),
            discriminator=_optim_wrapper(model.discriminator.parameters(), paths.dtype, device, lr, betas),
        )
        size = model_network(model).size
        data = {
            "source": synthetic_images(batch_size, size, device, paths.channels_last, seed),
            "driving": synthetic_images(batch_size, size, device, paths.channels_last, seed + 1),
        }
        step = lambda: model.train_step(data, optim)  # noqa: E731
        times = _timed(step, device, iters, warmup)
        memory = peak_memory(device)
        profile = top_operations(step, device, profile_top) if profile_top else None
    finally:
        restore()
        model.eval()
    return {
        "task": "train",
        "name": f"train {paths.describe()}",
        "batch_size": batch_size,
        "iters": iters,
        "warmup": warmup,
        **asdict(paths),
        **_summary(times, batch_size),
        "unit": "images/s",
        **memory,
        **({"top_operations": profile} if profile is not None else {}),
    }


# ----------------------------------------------------------------------------------- numerics, env
@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """TF32 off on CUDA (cuDNN and matmuls): the float32 reference of a comparison must be float32."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def transfer_under(
    model: nn.Module, paths: FastPaths, source: torch.Tensor, driving: torch.Tensor
) -> torch.Tensor:
    """``model.transfer(source, driving)`` (absolute) with ``paths`` switched on, as float32.

    The inputs are put in the paths' memory format and the dtype is applied by autocast on the inputs'
    device; the fast paths are switched off again afterwards.
    """
    restore = apply_fast_paths(model, paths)
    memory_format = torch.channels_last if paths.channels_last else torch.contiguous_format
    autocast = torch.autocast(
        source.device.type, dtype=getattr(torch, paths.dtype), enabled=paths.dtype != "float32"
    )
    try:
        with torch.inference_mode(), autocast:
            out = model.transfer(
                source.contiguous(memory_format=memory_format),
                driving.contiguous(memory_format=memory_format),
            )
        return out.float()
    finally:
        restore()


_SYNC_WARNING = "called a synchronizing CUDA operation"  # what the warn mode says


def _set_sync_debug_mode(mode: int | str) -> None:
    """torch's sync debug mode, without the warning torch gives when it is switched (a prototype)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.cuda.set_sync_debug_mode(mode)


def host_sync_sites(fn: Callable[[], object], device: torch.device | str) -> list[str] | None:
    """Where ``fn`` makes the host wait for the device: ``"file:line"`` of the Python line that called
    each synchronising CUDA operation, in order (CUDA only; None elsewhere)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    previous = torch.cuda.get_sync_debug_mode()
    # the switch's own warning says "synchronizing" too and was once counted as a sync of ``fn``:
    # only what ``fn`` itself raises is recorded
    _set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn()
    finally:
        _set_sync_debug_mode(previous)
    return [f"{w.filename}:{w.lineno}" for w in caught if _SYNC_WARNING in str(w.message)]


def count_host_syncs(fn: Callable[[], object], device: torch.device | str) -> int | None:
    """How many host-device synchronisations ``fn`` causes (CUDA only; None elsewhere)."""
    sites = host_sync_sites(fn, device)
    return None if sites is None else len(sites)


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment(device: torch.device | str = "cpu") -> dict:
    """What a result depends on: device, versions, threads, TF32 and cuDNN settings."""
    device = torch.device(device)
    env = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu_memory_bytes=props.total_memory,
            cudnn_benchmark=torch.backends.cudnn.benchmark,
            cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
            matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
        )
    return env


def _format_bytes(n: int | None) -> str:
    if not n:
        return "-"
    return f"{n / 2**30:.2f} GiB"


def format_table(records: Sequence[Mapping], reference: Mapping | None = None) -> str:
    """A plain-text table of benchmark records, with each animation's speedup over ``reference``."""
    header = ("run", "batch", "throughput", "ms/iter", "peak memory", "vs reference")
    rows = []
    for r in records:
        ratio = "-"
        if reference is not None and r.get("unit") == reference.get("unit") and not r.get("reference"):
            ratio = f"{r['throughput'] / reference['throughput']:.2f}x"
        rows.append(
            (
                r["name"],
                str(r["batch_size"]),
                f"{r['throughput']:.2f} {r['unit']}",
                f"{r['ms_per_iter_median']:.1f}",
                _format_bytes(r.get("peak_memory_bytes"))
                + (" (RSS)" if r.get("peak_memory_kind") == "process_peak_rss" else ""),
                ratio,
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


# ------------------------------------------------------------------------------------ entry points
def _offline_perceptual(loss_cfg: dict, notes: list[str]) -> dict:
    """``loss_cfg`` with random VGG19 weights when the pretrained ones are not on this machine."""
    loss_cfg = copy.deepcopy(loss_cfg)
    if not loss_cfg.get("perceptual_weight", 10.0):
        return loss_cfg
    perceptual = dict(loss_cfg.get("perceptual") or {})
    wanted = perceptual.get("weights_path") or (
        default_vgg19_weights_path() if perceptual.get("pretrained", True) else None
    )
    if wanted is not None and not Path(wanted).is_file():
        perceptual.pop("weights_path", None)
        perceptual["pretrained"] = False
        notes.append(f"VGG19 weights not found at {wanted}: random VGG19 weights (same cost)")
    loss_cfg["perceptual"] = perceptual
    return loss_cfg


def _stored_loss_config(path: str | Path, trust: bool = False) -> dict | None:
    """The loss set of the config an lmtk checkpoint stores (a 64 px model's loss is not the paper's)."""
    from lmtk.checkpoint import load_checkpoint_file
    from lmtk.config_file import read_stored_config

    checkpoint = load_checkpoint_file(path, trust=trust)
    text = checkpoint.get("meta", {}).get("cfg") if isinstance(checkpoint, Mapping) else None
    if not text:
        return None
    loss = read_stored_config(text, str(path), trust=trust).get("model", {}).get("loss")
    loss = copy.deepcopy(loss.to_dict() if hasattr(loss, "to_dict") else loss) if loss else None
    if not trust:
        check_registered_types(loss, str(path))
    return loss


def load_benchmark_model(
    path: str | Path, training: bool = False, cfg_options: Mapping | None = None, trust: bool = False
) -> tuple[nn.Module, dict, list[str]]:
    """A model to time from a config or a checkpoint, its config's ``fast_paths`` and notes.

    Inference-only runs drop the discriminator and the loss set. For training, a missing VGG19 weights
    file is replaced by random weights (the cost is the same), and a checkpoint without a loss set or a
    discriminator gets the default ones. ``trust``: as for :func:`lmtk.load_model`.
    """
    from lmtk.config_file import read_config

    path = Path(path)
    notes: list[str] = []
    if path.suffix in CONFIG_SUFFIXES:
        cfg = read_config(path)
        if cfg_options:
            cfg.merge_from_dict(dict(cfg_options))
        model_cfg = copy.deepcopy(cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model))
        fast = dict(cfg.get("fast_paths") or {})
        if training:
            model_cfg["loss"] = _offline_perceptual(
                model_cfg.get("loss") or {"type": "lmtk.LIALoss.v1"}, notes
            )
        else:
            model_cfg["loss"] = model_cfg["discriminator"] = None
        model = build(model_cfg, "models")
        return model.eval(), fast, notes
    if cfg_options:
        raise ValueError("cfg_options apply to configs only")
    model = load_model(path, trust=trust)
    if training:
        if model.loss is None:
            loss_cfg = _stored_loss_config(path, trust) or {"type": "lmtk.LIALoss.v1"}
            model.loss = build(_offline_perceptual(loss_cfg, notes), "loss_sets")
        if model.discriminator is None:
            model.discriminator = build(
                {"type": "lmtk.StyleGAN2Discriminator.v1", "size": model.size}, "discriminators"
            )
            notes.append("the checkpoint has no discriminator: a fresh StyleGAN2 discriminator is trained")
    return model.eval(), {}, notes


def run_benchmarks(
    model: nn.Module,
    device: torch.device | str = "cpu",
    tasks: Sequence[str] = ("animate",),
    paths: FastPaths | None = None,
    batch_size: int = 16,
    train_batch_size: int | None = None,
    frames: int = 64,
    iters: int = 3,
    warmup: int = 1,
    reference: bool = False,
    reference_frames: int | None = None,
    profile_top: int = 0,
    backends: Sequence[str] = ("pytorch",),
    latency_frames: int = 0,
    export_dir: str | os.PathLike | None = None,
) -> dict:
    """Run the requested measurements and return a report (``environment``, ``results``, ratios).

    The reference (when asked for) runs on the plain model in the same process, once before and once
    after the animation (both throughputs are kept in ``throughput_runs``); the speedup of the animation
    over it is ``speedup_vs_reference``. ``profile_top`` > 0 adds each measurement's ``top_operations``
    (one more iteration under PyTorch's profiler, after the timed ones). ``backends`` (``BACKEND_RUNS``)
    are timed one after the other between the two reference runs; the onnxruntime ones share one export,
    in ``export_dir`` (made there if missing, else checked against the model) or a temporary folder. ``speedup_vs_reference`` is the fastest animation's.
    """
    device = torch.device(device)
    paths = paths or FastPaths()
    unknown = sorted(set(tasks) - {"animate", "train"})
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from animate, train")
    report = {
        "environment": environment(device),
        "settings": {
            "tasks": list(tasks),
            "fast_paths": asdict(paths),
            "batch_size": batch_size,
            "train_batch_size": train_batch_size or batch_size,
            "frames": frames,
            "iters": iters,
            "warmup": warmup,
            "image_size": model_network(model).size,
        },
        "results": [],
        "reference": None,
        "speedup_vs_reference": None,
    }
    reference_frames = reference_frames or min(frames, 16)
    before = benchmark_reference(model, device, frames=reference_frames) if reference else None
    unknown = sorted(set(backends) - set(BACKEND_RUNS))
    if unknown or not backends:
        raise ValueError(f"unknown backends {unknown}; choose from {', '.join(BACKEND_RUNS)}")
    records = []
    with tempfile.TemporaryDirectory(prefix="lmtk-benchmark-onnx-") as temporary:
        folder = Path(export_dir) if export_dir is not None else Path(temporary) / "export"
        if "animate" in tasks and any(b != "pytorch" for b in backends) and not folder.exists():
            from lmtk.apis.onnx_export import export_onnx

            export_onnx(model, folder, int8="onnxruntime-int8" in backends)
        for name in backends if "animate" in tasks else ():
            options = dict(
                backend=name.split("-")[0], int8=name.endswith("int8"), latency_frames=latency_frames
            )
            if name != "pytorch":
                options["export_dir"] = folder
            records.append(
                benchmark_animation(
                    model,
                    device,
                    paths,
                    batch_size,
                    frames,
                    iters,
                    warmup,
                    profile_top=profile_top,
                    **options,
                )
            )
    report["results"] += records
    record = max(records, key=lambda r: r["throughput"], default=None)
    if before is not None:
        # once before and once after the animation, so a drift in the machine's load shows and averages out
        after = benchmark_reference(model, device, frames=reference_frames)
        merged = dict(before, frames=before["frames"] + after["frames"], iters=2)
        merged["seconds_total"] = before["seconds_total"] + after["seconds_total"]
        merged["throughput"] = merged["frames"] / merged["seconds_total"]
        merged["ms_per_iter_mean"] = merged["ms_per_iter_median"] = 1000 / merged["throughput"]
        merged["throughput_runs"] = [before["throughput"], after["throughput"]]
        merged["frame_seconds"] = before["frame_seconds"] + after["frame_seconds"]
        merged.update(_percentiles(merged["frame_seconds"]))
        merged.update(peak_memory(device) if device.type != "cuda" else {})
        report["reference"] = merged
        report["results"].insert(0, merged)
        for each in records:
            each["speedup_vs_reference"] = each["throughput"] / merged["throughput"]
        if record is not None:
            report["speedup_vs_reference"] = record["speedup_vs_reference"]
    if "train" in tasks:
        report["results"].append(
            benchmark_training(
                model, device, paths, train_batch_size or batch_size, iters, warmup, profile_top=profile_top
            )
        )
    return report
