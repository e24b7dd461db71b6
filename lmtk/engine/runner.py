"""mmengine's Runner, building lmtk's models and datasets through the catalogue registries."""

from __future__ import annotations

import contextlib
import copy
import os
import os.path as osp

from mmengine.runner import Runner

from ..registry import build, kind_of

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


def _is_lmtk(cfg) -> bool:
    return isinstance(cfg, dict) and isinstance(cfg.get("type"), str) and kind_of(cfg["type"]) is not None


class LMTKRunner(Runner):
    """A Runner whose model and dataset configs may name lmtk components (``lmtk.LIA.v1``).

    Everything else (hooks, optimizers, schedulers, loops) is mmengine's. Checkpoints are written to a
    temporary file and renamed, so the latest checkpoint is never a partial file.
    """

    def build_model(self, model):
        if _is_lmtk(model):
            model = build(copy.deepcopy(dict(model)), "models")
        return super().build_model(model)

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
        temporary = osp.join(out_dir, f".{filename}.partial")
        try:
            super().save_checkpoint(out_dir, osp.basename(temporary), *args, **kwargs)
        except BaseException:
            if osp.exists(temporary):
                os.remove(temporary)
            raise
        if osp.exists(temporary):  # only rank 0 writes
            os.replace(temporary, osp.join(out_dir, filename))
