"""Measuring the training data loader: does it deliver batches as fast as the training step takes them?

:func:`benchmark_data_loading` builds a config's ``train_dataloader`` the way the training runner does
(its dataset, sampler, workers, pinned memory) and times how fast batches arrive on the device. Its
``images/s`` counts training samples (one source-driving pair each), the unit of
:func:`~benchmarks.speed.benchmark_training`, so the two numbers compare directly: a loader slower
than the step leaves the GPU waiting.

Example:
    >>> from benchmarks.data_loading import benchmark_data_loading
    >>> record = benchmark_data_loading(cfg.train_dataloader, device="cuda", batches=20)  # doctest: +SKIP
    >>> record["throughput"], record["unit"]  # doctest: +SKIP
    (1843.2, 'images/s')
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Mapping

import torch
from mmengine.model import BaseDataPreprocessor

from .speed import _reset_peak, _summary, peak_memory

__all__ = ["benchmark_data_loading"]


def _num_items(batch) -> int:
    """The samples in a collated batch: the length of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    values = (
        batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, list | tuple) else ()
    )
    for value in values:
        items = _num_items(value)
        if items:
            return items
    return 0


def benchmark_data_loading(
    dataloader_cfg: Mapping,
    device: torch.device | str = "cpu",
    batches: int = 20,
    warmup: int | None = None,
    num_workers: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> dict:
    """Images/s that a training data loader delivers onto ``device``.

    Args:
        dataloader_cfg: a config's ``train_dataloader`` entry (dataset, sampler, batch size, workers).
        device: where each batch is copied by the data preprocessor the LIA configs give the model
            (mmengine's ``BaseDataPreprocessor``, non-blocking); on a GPU the copy is waited for before
            the clock is read.
        batches: timed batches.
        warmup: untimed batches first; they absorb the workers' start-up and first decodes. Default:
            two per worker.
        num_workers: overrides the config's worker count.
        batch_size: overrides the config's batch size.
        seed: the loader's seed.

    Returns:
        A record like :func:`~benchmarks.speed.benchmark_training`'s (``throughput`` in ``images/s``,
        ``ms_per_iter_median``: the wait for one batch), with the loader's settings. Peak memory is this
        process's; the workers are separate processes.
    """
    from lmtk.engine.runner import LMTKRunner

    if batches < 1:
        raise ValueError(f"batches must be >= 1, got {batches}")
    device = torch.device(device)
    cfg = copy.deepcopy(dict(dataloader_cfg))
    if num_workers is not None:
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        cfg["num_workers"] = num_workers
        if num_workers == 0:
            cfg["persistent_workers"] = False  # torch refuses persistent workers without workers
    if batch_size is not None:
        cfg["batch_size"] = batch_size
    workers = int(cfg.get("num_workers", 0))
    warmup = 2 * max(1, workers) if warmup is None else warmup
    pin = bool(cfg.get("pin_memory", False)) and device.type == "cuda"
    cfg["pin_memory"] = pin  # pinning only serves copies to a GPU (torch warns about it elsewhere)
    loader = LMTKRunner.build_dataloader(cfg, seed=seed)
    to_device = BaseDataPreprocessor(non_blocking=True).to(device)
    iterator = iter(loader)

    def next_batch():
        nonlocal iterator
        try:
            return next(iterator)
        except StopIteration:  # a finite sampler: the next epoch, as the training loop does
            iterator = iter(loader)
            return next(iterator)

    times, items = [], 0
    _reset_peak(device)  # on a GPU: what the batches take, not what earlier work left as the peak
    try:
        for _ in range(warmup):
            to_device(next_batch())
        for _ in range(batches):
            start = time.perf_counter()
            batch = to_device(next_batch())
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
            items += _num_items(batch)
    finally:
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
    summary = _summary(times, items / batches)
    dataset = loader.dataset
    return {
        "task": "data",
        "name": f"data loading ({type(dataset).__name__}, {workers} worker{'' if workers == 1 else 's'})",
        "batch_size": int(cfg.get("batch_size", 1)),
        "iters": batches,
        "warmup": warmup,
        "num_workers": workers,
        "pin_memory": pin,
        "cpu_count": os.cpu_count(),
        "dataset": repr(dataset),
        **summary,
        "unit": "images/s",
        **peak_memory(device),
    }
