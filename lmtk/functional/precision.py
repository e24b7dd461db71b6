"""Islands of full precision inside autocast, for the few small computations bf16 would spoil."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["cast_keeping_broadcast", "full_precision"]


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


def cast_keeping_broadcast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x.to(dtype)``, but a batch broadcast by ``expand`` (stride 0) is cast once and expanded again.

    ``Tensor.to`` materialises an expanded tensor: the Animator expands one source's features over a
    batch of 64 driving frames, and casting them for the float32 warp would write 64 copies.

    Example:
        >>> one = torch.rand(1, 4, 8, 8, dtype=torch.bfloat16).expand(64, -1, -1, -1)
        >>> cast_keeping_broadcast(one, torch.float32).stride(0)
        0
    """
    if x.dtype == dtype:
        return x
    if x.dim() and x.shape[0] > 1 and x.stride(0) == 0:
        return x[:1].to(dtype).expand(x.shape)
    return x.to(dtype)
