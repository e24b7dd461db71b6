"""Islands of full precision inside autocast, for the few small computations bf16 would spoil."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["full_precision"]


@contextlib.contextmanager
def full_precision(like: torch.Tensor, enabled: bool = True) -> Iterator[torch.dtype]:
    """Autocast off; yields the dtype to compute in: ``like``'s, promoted to at least float32.

    With ``enabled=False`` it changes nothing and yields ``like``'s dtype.

    Example:
        >>> with torch.autocast("cpu", dtype=torch.bfloat16), full_precision(torch.ones(1)) as dtype:
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype, dtype
        (torch.float32, torch.float32)
    """
    if not enabled:
        yield like.dtype
        return
    with torch.autocast(like.device.type, enabled=False):
        yield torch.promote_types(like.dtype, torch.float32)
