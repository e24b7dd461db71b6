"""One shape check for tensors and arrays, with one message: the argument, the expected and the actual
shape (in the spirit of kornia's ``KORNIA_CHECK_SHAPE``).

Example:
    >>> check_shape(torch.zeros(2, 3, 8, 8), ["B", "3", "H", "W"], "image")
    >>> check_shape(torch.zeros(2, 1, 8, 8), ["B", "3", "H", "W"], "image")
    Traceback (most recent call last):
    ...
    ValueError: image must be (B, 3, H, W), got (2, 1, 8, 8)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["check_shape"]


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else np.dtype(dtype).name


def _matches(shape: Sequence[int], expected: Sequence[str | int]) -> bool:
    # plain loops: the check runs in every forward of the components that use it
    count, offset = len(expected), 0
    if count and expected[0] == "*":  # any number of leading dimensions
        count -= 1
        offset = len(shape) - count
        if offset < 0:
            return False
        expected = expected[1:]
    elif len(shape) != count:
        return False
    for i, want in enumerate(expected):
        if isinstance(want, int):
            if shape[offset + i] != want:
                return False
        elif want.isdigit() and shape[offset + i] != int(want):
            return False
    return True


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
        ValueError: ``{name} must be (B, 3, H, W)[ uint8], got (2, 1, 8, 8)[ float32]``.

    Example:
        >>> check_shape(np.zeros((4, 4, 3), np.uint8), ["H", "W", 3], "frame", dtype=np.uint8)
        >>> check_shape(np.zeros((4, 4)), ["H", "W", 3], "frame", dtype=np.uint8)
        Traceback (most recent call last):
        ...
        ValueError: frame must be (H, W, 3) uint8, got (4, 4) float64
        >>> check_shape([1, 2], ["*", 2], "points")
        Traceback (most recent call last):
        ...
        ValueError: points must be (*, 2), got list
    """
    actual = getattr(x, "shape", None)
    has_dtype = dtype is None or getattr(x, "dtype", None) == dtype
    if actual is not None and has_dtype and _matches(actual, shape):
        return
    expected = f"({', '.join(str(s) for s in shape)})"
    if dtype is not None:
        expected += f" {_dtype_name(dtype)}"
    if actual is None:
        got = type(x).__name__
    else:
        got = str(tuple(int(s) for s in actual))
        if dtype is not None:
            got += f" {_dtype_name(x.dtype)}"
    raise ValueError(f"{name} must be {expected}, got {got}")
