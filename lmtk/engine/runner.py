"""mmengine's Runner, building lmtk's models and datasets through the catalogue registries."""

from __future__ import annotations

import contextlib
import copy
import os
import os.path as osp

import torch
from mmengine.runner import Runner

from ..apis.fast_paths import FastPaths, apply_fast_paths, mixed_precision_optim_wrappers
from ..registry import build, kind_of
from .hooks.deferred_runtime_info_hook import flush_deferred_logs

__all__ = ["LMTKRunner"]


@contextlib.contextmanager
def _full_unpickling():
    """mmengine's training checkpoints hold message-hub objects and NumPy RNG states that
    ``torch.load(weights_only=True)``, PyTorch's default, refuses; they are the run's own files."""
    previous = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = previous


def _resolve_max_iters(cfg, max_iters: int):
    """``cfg`` with every ``end`` / ``T_max`` given as ``"max_iters"`` replaced by ``max_iters``."""
    if isinstance(cfg, list | tuple):
        return [_resolve_max_iters(item, max_iters) for item in cfg]
    if isinstance(cfg, dict):
        resolved = {key: _resolve_max_iters(value, max_iters) for key, value in cfg.items()}
        for key in ("end", "T_max"):
            if resolved.get(key) == "max_iters":
                resolved[key] = max_iters
        return resolved
    return cfg


def _is_lmtk(cfg) -> bool:
    return isinstance(cfg, dict) and isinstance(cfg.get("type"), str) and kind_of(cfg["type"]) is not None


class LMTKRunner(Runner):
    """A Runner whose model and dataset configs may name lmtk components (``lmtk.LIA.v1``).

    Everything else (hooks, optimizers, schedulers, loops) is mmengine's. Checkpoints are written to a
    temporary file and renamed, so the latest checkpoint is never a partial file. A parameter
    scheduler's ``end`` or ``T_max`` may be ``"max_iters"``, the training length, so a schedule that
    ends with training (a cosine decay to zero) follows ``--cfg-options train_cfg.max_iters=...``.

    A config's ``fast_paths = dict(dtype="bfloat16", channels_last=True, fused_fir="all", compile="default")``
    (:class:`~lmtk.apis.fast_paths.FastPaths`) is switched on for training: the model-side paths when the
    model is built, the dtype through the optim wrappers (bf16: :class:`AutocastOptimWrapper`, fp16:
    ``AmpOptimWrapper``). None of them changes a parameter or the checkpoint format.
    """

    @property
    def fast_paths(self) -> FastPaths:
        """The config's ``fast_paths`` (all off without one)."""
        return FastPaths.from_config(self.cfg.get("fast_paths"))

    def build_param_scheduler(self, scheduler):
        max_iters = getattr(self.train_loop, "max_iters", None)
        if max_iters is not None:
            scheduler = _resolve_max_iters(scheduler, max_iters)
        return super().build_param_scheduler(scheduler)

    def build_model(self, model):
        paths = self.fast_paths  # checked before the (slow) model build
        if paths.dtype == "float16" and not torch.cuda.is_available():
            raise ValueError(
                "float16 training runs under mmengine's AmpOptimWrapper, which needs a GPU; "
                "on a CPU use dtype bfloat16"
            )
        if _is_lmtk(model):
            model = build(copy.deepcopy(dict(model)), "models")
        model = super().build_model(model)
        if paths != FastPaths():
            apply_fast_paths(model, paths, training=True)  # before DDP wraps the networks
            self.logger.info(f"fast paths: {paths.describe()}")
        return model

    def build_optim_wrapper(self, optim_wrapper):
        dtype = self.fast_paths.dtype
        if isinstance(optim_wrapper, dict) and dtype != "float32":
            optim_wrapper = mixed_precision_optim_wrappers(optim_wrapper, dtype)
        return super().build_optim_wrapper(optim_wrapper)

    @staticmethod
    def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
        if isinstance(dataloader, dict) and _is_lmtk(dataloader.get("dataset")):
            dataloader = copy.deepcopy(dict(dataloader))
            dataloader["dataset"] = build(dict(dataloader["dataset"]), "datasets")
        return Runner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)

    def resume(self, *args, **kwargs):
        with _full_unpickling():
            return super().resume(*args, **kwargs)

    def load_checkpoint(self, *args, **kwargs):
        with _full_unpickling():
            return super().load_checkpoint(*args, **kwargs)

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        flush_deferred_logs(self)  # the checkpoint keeps the message hub: every logged value belongs in it
        temporary = osp.join(out_dir, f".{filename}.partial")
        try:
            super().save_checkpoint(out_dir, osp.basename(temporary), *args, **kwargs)
        except BaseException:
            if osp.exists(temporary):
                os.remove(temporary)
            raise
        if osp.exists(temporary):  # only rank 0 writes
            os.replace(temporary, osp.join(out_dir, filename))
