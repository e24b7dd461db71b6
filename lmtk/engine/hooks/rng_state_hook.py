"""Save every random number generator's state in checkpoints, so a resumed run continues exactly."""

from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

__all__ = ["RNGStateHook", "capture_rng_state", "restore_rng_state"]


def capture_rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Stores the Python, NumPy, torch (and CUDA) RNG states in each checkpoint's meta.

    On resume it hands them to the runner as ``resumed_rng_state``; ``ExactResumeIterBasedTrainLoop``
    restores them once the data stream is at the resumed iteration.
    """

    priority = "VERY_LOW"

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault("meta", {})["rng_state"] = capture_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        runner.resumed_rng_state = checkpoint.get("meta", {}).get("rng_state")
