"""Comparing two ways of computing the same model: image-like synthetic inputs and a relative error.

Used where an export or a fast path is checked against the plain model (``lmtk.apis.onnx_export``, the
measurements in ``benchmarks/``, the tests).

Example:
    >>> images = synthetic_images(2, 32, seed=1)
    >>> tuple(images.shape), relative_error(images, images)
    ((2, 3, 32, 32), 0.0)
"""

from __future__ import annotations

import torch

__all__ = ["relative_error", "synthetic_images"]


def synthetic_images(
    batch: int, size: int, device: torch.device | str = "cpu", channels_last: bool = False, seed: int = 0
) -> torch.Tensor:
    """Smooth random images ``(B, 3, S, S)`` in [-1, 1] (upsampled noise: image-like, cost as real ones)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, max(1, size // 8), max(1, size // 8), generator=generator) * 2 - 1
    images = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    images = (images + 0.1 * torch.randn(images.shape, generator=generator)).clamp(-1, 1).to(device)
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images.contiguous()


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """``||ours - reference|| / ||reference||`` in float64."""
    ours, reference = ours.double(), reference.double()
    return float((ours - reference).norm() / reference.norm())
