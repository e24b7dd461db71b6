"""The two value ranges of an image: uint8 pixels 0-255 (files, decoders, numpy) and float [-1, 1] (the
network's input and output).

Both functions keep the layout (any shape, ``(B, 3, H, W)`` or ``(H, W, 3)`` alike) and the device: a
caller permutes and moves the tensor where it wants the arithmetic done.

Example:
    >>> pixels = torch.tensor([0, 64, 128, 255], dtype=torch.uint8)
    >>> images = uint8_to_float(pixels)
    >>> images
    tensor([-1.0000, -0.4980,  0.0039,  1.0000])
    >>> float_to_uint8(images)
    tensor([  0,  64, 128, 255], dtype=torch.uint8)
"""

from __future__ import annotations

import torch

__all__ = ["float_to_uint8", "uint8_to_float"]


def uint8_to_float(pixels: torch.Tensor) -> torch.Tensor:
    """Pixel values 0-255 as float32 in [-1, 1] (``x / 127.5 - 1``), in a new tensor.

    Example:
        >>> uint8_to_float(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)).unique()
        tensor([1.])
    """
    return pixels.to(torch.float32, copy=True).div_(127.5).sub_(1.0)


def float_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] as uint8 pixel values: clamped to [-1, 1] first, then rounded to the nearest.

    The arithmetic is in float32 whatever the input's dtype (bfloat16 output is widened first).

    Example:
        >>> float_to_uint8(torch.tensor([-3.0, -0.999, 0.0, 0.5, 7.0]))
        tensor([  0,   0, 128, 191, 255], dtype=torch.uint8)
    """
    return images.detach().float().clamp(-1, 1).add_(1).mul_(127.5).round_().to(torch.uint8)
