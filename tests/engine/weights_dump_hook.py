"""A test-only hook: each rank saves its weights before and after training (DDP consistency test)."""

import os

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpWeightsHook(Hook):
    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def _dump(self, runner, suffix: str) -> None:
        model = getattr(runner.model, "module", runner.model)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        torch.save(state, os.path.join(self.out_dir, f"weights_rank{get_rank()}{suffix}.pt"))

    def before_train(self, runner) -> None:
        self._dump(runner, "_initial")

    def after_train(self, runner) -> None:
        self._dump(runner, "")
