"""One shape check for tensors and arrays, with one message: the argument, the expected and the actual
shape (in the spirit of kornia's ``KORNIA_CHECK_SHAPE``).

Example:
    >>> check_shape(torch.zeros(2, 3, 8, 8), ["B", "3", "H", "W"], "image")
    >>> check_shape(torch.zeros(2, 1, 8, 8), ["B", "3", "H", "W"], "image")
    Traceback (most recent call last):
    ...
    ValueError: image must have shape (B, 3, H, W), got (2, 1, 8, 8)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["check_shape"]


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else np.dtype(dtype).name


def _matches(shape: tuple[int, ...], expected: Sequence[str | int]) -> bool:
    if expected and expected[0] == "*":  # any number of leading dimensions
        expected = expected[1:]
        if len(shape) < len(expected):
            return False
        shape = shape[len(shape) - len(expected) :]
    elif len(shape) != len(expected):
        return False
    return all(size == int(want) for size, want in zip(shape, expected, strict=True) if _is_size(want))


def _is_size(entry: str | int) -> bool:
    return isinstance(entry, int) or entry.isdigit()


def check_shape(x: Any, shape: Sequence[str | int], name: str = "input", dtype: Any = None) -> None:
    """Raise a ValueError unless ``x`` (a tensor or numpy array) has ``shape`` (and ``dtype``, if given).

    Args:
        x: what to check; anything without a ``shape`` fails (the message names its type).
        shape: one entry a dimension: an int or a string of digits is that exact size, any other string
            (``"B"``, ``"H"``) names a dimension of any size, and a leading ``"*"`` stands for any number
            of leading dimensions.
        name: the argument's name, the first word of the message.
        dtype: a torch or numpy dtype ``x`` must have, or None for any.

    Raises:
        ValueError: ``{name} must have shape (B, 3, H, W)[ and dtype uint8], got (2, 1, 8, 8)[ float32]``.

    Example:
        >>> check_shape(np.zeros((4, 4, 3), np.uint8), ["H", "W", 3], "frame", dtype=np.uint8)
        >>> check_shape(np.zeros((4, 4)), ["H", "W", 3], "frame", dtype=np.uint8)
        Traceback (most recent call last):
        ...
        ValueError: frame must have shape (H, W, 3) and dtype uint8, got (4, 4) float64
        >>> check_shape([1, 2], ["*", 2], "points")
        Traceback (most recent call last):
        ...
        ValueError: points must have shape (*, 2), got list
    """
    actual = getattr(x, "shape", None)
    has_dtype = dtype is None or getattr(x, "dtype", None) == dtype
    if actual is not None and has_dtype and _matches(tuple(actual), shape):
        return
    expected = f"({', '.join(str(s) for s in shape)})"
    if dtype is not None:
        expected += f" and dtype {_dtype_name(dtype)}"
    if actual is None:
        got = type(x).__name__
    else:
        got = str(tuple(int(s) for s in actual))
        if dtype is not None:
            got += f" {_dtype_name(x.dtype)}"
    raise ValueError(f"{name} must have shape {expected}, got {got}")
