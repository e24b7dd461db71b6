"""``lmtk.L1.v1``: mean absolute pixel difference between generated and real frames, on [0, 1] images.

Example:
    >>> real = torch.zeros(2, 3, 8, 8)
    >>> l1_distance(real + 0.5, real).tolist()  # 0.5 in [-1, 1] is 0.25 in [0, 1]
    [0.25, 0.25]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ...registry import metrics
from .base import FrameMetric, mean_or_nan, to_frames

__all__ = ["L1", "l1_distance"]


def l1_distance(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute difference of ``(N, 3, H, W)`` images in [-1, 1], measured on [0, 1].

    ``fake`` is clamped to [-1, 1] first (what would be written to a file). Returns ``(N,)``.
    """
    fake, real = to_frames(fake), to_frames(real)
    if fake.shape != real.shape:
        raise ValueError(f"fake and real differ in shape: {tuple(fake.shape)} vs {tuple(real.shape)}")
    return (fake.clamp(-1, 1) - real).abs().mean(dim=(1, 2, 3)) / 2


@metrics.register("lmtk.L1.v1")
class L1(FrameMetric):
    """Reconstruction L1 (paper Table 1), averaged over all frames."""

    name = "l1"
    transfer_reference = None  # needs ground truth

    def evaluate_frames(
        self, fake: torch.Tensor, real: torch.Tensor, sample: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        return [{"l1": value} for value in l1_distance(fake, real).tolist()]

    def reduce(self, entries: list[dict[str, Any]]) -> dict[str, float]:
        return {"l1": mean_or_nan([r["l1"] for r in entries]), "l1_frames": len(entries)}
