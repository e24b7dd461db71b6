"""Training log values read from the device once per logging interval instead of every iteration."""

from __future__ import annotations

import torch
from mmengine.hooks import LoggerHook, RuntimeInfoHook
from mmengine.registry import HOOKS
from mmengine.utils import apply_to

__all__ = ["DeferredRuntimeInfoHook"]


@HOOKS.register_module()
class DeferredRuntimeInfoHook(RuntimeInfoHook):
    """mmengine's ``RuntimeInfoHook``, except that the training step's log values (losses, gradient
    norms) stay on the device until the logger is about to read them.

    The plain hook turns every value into a Python number with ``.item()`` after every iteration; on a
    GPU each is a host synchronisation, so the host waits for the step to finish before it can queue
    the next one and the GPU idles while it does. Here the values of a logging interval are copied in
    one transfer: one synchronisation per interval. The message hub receives the same values in the same
    order, before the logger reads them, before a checkpoint saves the message hub, before validation and
    at the end of training. The step's ``outputs`` reach the other hooks unchanged.

    Args:
        interval: flush every this many iterations; None (default) follows the ``LoggerHook``'s
            interval (every iteration without a logger).
    """

    def __init__(self, interval: int | None = None) -> None:
        if interval is not None and interval < 1:
            raise ValueError(f"interval must be a positive number of iterations, got {interval}")
        self.interval = interval
        self._flush_interval = interval or 1
        self._pending: list[dict] = []

    def before_train(self, runner) -> None:
        super().before_train(runner)
        loggers = [hook for hook in runner.hooks if isinstance(hook, LoggerHook)]
        self._flush_interval = self.interval or (loggers[0].interval if loggers else 1)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: dict | None = None) -> None:
        if outputs is not None:
            for key, value in outputs.items():
                if torch.is_tensor(value) and value.numel() != 1:
                    raise ValueError(f"log value {key!r} must be a scalar, got shape {tuple(value.shape)}")
            # detached: a loss would otherwise keep its whole autograd graph alive until the flush
            self._pending.append({k: v.detach() if torch.is_tensor(v) else v for k, v in outputs.items()})
        if (
            self.every_n_train_iters(runner, self._flush_interval)
            or self.end_of_epoch(runner.train_dataloader, batch_idx)
            or self.is_last_train_iter(runner)
        ):
            self.flush(runner)

    def before_val(self, runner) -> None:
        self.flush(runner)
        super().before_val(runner)

    def after_train(self, runner) -> None:
        self.flush(runner)
        super().after_train(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._pending:  # the checkpoint keeps the message hub: every logged value belongs in it
            self.flush(runner)
            checkpoint["message_hub"] = apply_to(
                runner.message_hub.state_dict(), lambda x: hasattr(x, "cpu"), lambda x: x.cpu()
            )

    def flush(self, runner) -> None:
        """Hand every pending value to the message hub (one device-to-host copy)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        floats = [v for out in pending for v in out.values() if torch.is_tensor(v) and v.is_floating_point()]
        if floats:
            device = floats[0].device
            # float64 holds every float32/bf16/fp16 value exactly, so the numbers equal ``.item()``'s
            dtype = torch.float32 if device.type == "mps" else torch.float64
            host = iter(torch.stack([v.reshape(()).to(device, dtype) for v in floats]).tolist())
        for out in pending:
            for key, value in out.items():
                if torch.is_tensor(value) and value.is_floating_point():
                    value = next(host)
                runner.message_hub.update_scalar(f"train/{key}", value)
