"""An iteration-based training loop whose resumed runs continue exactly where they stopped."""

from __future__ import annotations

import logging

from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import IterBasedTrainLoop

from .hooks.rng_state_hook import restore_rng_state

__all__ = ["ExactResumeIterBasedTrainLoop"]


@LOOPS.register_module()
class ExactResumeIterBasedTrainLoop(IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop`` that restores the RNG states saved by ``RNGStateHook``.

    On resume, mmengine re-seeds and replays the data loader up to the resumed iteration so the
    sampler is where it was. The random states must be put back after that replay and before the next
    batch is drawn, which no hook point allows; so this loop does it between the two.
    """

    def run(self):
        self.runner.call_hook("before_train")
        self.runner.call_hook("before_train_epoch")
        if self._iter > 0:
            print_log(
                f"Advance dataloader {self._iter} steps to skip data that has already been trained",
                logger="current",
                level=logging.WARNING,
            )
            for _ in range(self._iter):
                next(self.dataloader_iterator)
            state = getattr(self.runner, "resumed_rng_state", None)
            if state is not None:
                restore_rng_state(state)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (
                self.runner.val_loop is not None
                and self._iter >= self.val_begin
                and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)
            ):
                self.runner.val_loop.run()
        self.runner.call_hook("after_train_epoch")
        self.runner.call_hook("after_train")
        return self.runner.model
