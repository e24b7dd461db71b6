"""The last checks before the first iteration, and the moment from which errors are training's."""

from __future__ import annotations

import difflib
import inspect
import logging

from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import Runner

__all__ = ["TrainingStartHook"]


@HOOKS.register_module()
class TrainingStartHook(Hook):
    """Refuses, before the first iteration, what would otherwise fail later or train not as meant:

    - an option ``CheckpointHook`` does not have (it hands unknown options to ``save_checkpoint``, so
      ``intervals=`` failed at the first save, after the training up to it);
    - a dataset whose image size is not the model's;

    and says when a resumed run has nothing left to train. Then it marks the start of training
    (``runner.training_started``): ``tools/train.py`` reports an error before it in one line, and one
    after it with its traceback. It runs before every other ``before_train`` hook, once the model is
    built and the checkpoint (if any) loaded. ``LMTKRunner`` registers it.
    """

    priority = "HIGHEST"

    def before_train(self, runner) -> None:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook):
                check_checkpoint_options(hook)
        check_image_size(runner)
        max_iters = getattr(runner.train_loop, "max_iters", None)
        if max_iters is not None and runner.iter >= max_iters:
            print_log(
                f"nothing to train: the run is at iteration {runner.iter} and train_cfg.max_iters is "
                f"{max_iters}; raise it (--cfg-options train_cfg.max_iters=N) to train on",
                logger="current",
                level=logging.WARNING,
            )
        runner.mark_training_started()


def check_checkpoint_options(hook: CheckpointHook) -> None:
    """Refuse an option of ``default_hooks.checkpoint`` that neither the hook nor ``save_checkpoint`` takes."""
    accepted = set(inspect.signature(Runner.save_checkpoint).parameters)
    options = [*inspect.signature(CheckpointHook.__init__).parameters][1:-1]  # without self and **kwargs
    for key in sorted(set(getattr(hook, "args", {})) - accepted):
        close = difflib.get_close_matches(key, options, n=1)
        meant = f"; did you mean {close[0]!r}?" if close else f"; it takes {', '.join(options)}"
        raise ValueError(f"default_hooks.checkpoint has no option {key!r}{meant}")


def check_image_size(runner) -> None:
    """The training images must have the model's size."""
    model = getattr(runner.model, "module", runner.model)
    model_size = getattr(model, "size", None)
    data_size = getattr(runner.train_dataloader.dataset, "size", None)
    if isinstance(model_size, int) and data_size is not None and tuple(data_size) != (model_size,) * 2:
        shown = data_size[0] if data_size[0] == data_size[1] else tuple(data_size)
        raise ValueError(
            f"train_dataloader.dataset.size={shown} but model.size={model_size}: the model takes "
            f"{model_size}x{model_size} images; give both the same size"
        )
