"""An iteration-based training loop whose resumed runs continue exactly where they stopped."""

from __future__ import annotations

import logging

from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from ..datasets.resumable_sampler import ResumableInfiniteSampler
from .hooks.rng_state_hook import restore_rng_state

__all__ = ["ExactResumeIterBasedTrainLoop"]


@LOOPS.register_module()
class ExactResumeIterBasedTrainLoop(IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop`` that resumes at the exact batch and random state it stopped at.

    With a ``ResumableInfiniteSampler`` (lmtk's dataset configs) the sampler starts at the resumed
    iteration's draw directly: nothing before it is loaded. With another sampler, the data loader is
    replayed up to the resumed iteration, as mmengine does, which loads every earlier batch again (a
    warning says so). Then the RNG states saved by ``RNGStateHook`` are put back, before the next batch
    is drawn, which no hook point allows; so this loop does it between the two.
    """

    def run(self):
        self.runner.call_hook("before_train")
        self.runner.call_hook("before_train_epoch")
        if self._iter > 0:
            self._skip_trained_batches()
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

    def _skip_trained_batches(self) -> None:
        sampler = getattr(self.dataloader, "sampler", None)
        if isinstance(sampler, ResumableInfiniteSampler):
            sampler.start_at(self._iter * self.dataloader.batch_size)
            # a new iterator: the current one has already queued batches from the stream's start
            self.dataloader_iterator = _InfiniteDataloaderIterator(self.dataloader)
            print_log(f"Resumed the data stream at iteration {self._iter}", logger="current")
            return
        print_log(
            f"Loading the {self._iter} batches already trained on again to reach the resumed position "
            f"({type(sampler).__name__} cannot start part-way; ResumableInfiniteSampler can)",
            logger="current",
            level=logging.WARNING,
        )
        for _ in range(self._iter):
            next(self.dataloader_iterator)
