"""Shared part of the keypoint metrics (AKD, MKR): an extractor run on generated and real frames."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ...registry import build
from ..extractors.base import KeypointExtractor, Keypoints
from .base import FrameMetric, to_uint8_frames

__all__ = ["KeypointMetric", "frame_ground_truth"]


def frame_ground_truth(sample: Mapping[str, Any], count: int) -> list[np.ndarray | None]:
    """The real frames' ground-truth keypoints of a sample, one ``(K, 2)`` array (or None) per frame."""
    keypoints = sample.get("keypoints")
    if keypoints is None:
        return [None] * count
    keypoints = np.asarray(keypoints.cpu() if isinstance(keypoints, torch.Tensor) else keypoints, np.float64)
    if keypoints.ndim == 2:
        keypoints = np.broadcast_to(keypoints, (count, *keypoints.shape))
    if keypoints.ndim != 3 or keypoints.shape[0] != count or keypoints.shape[2] != 2:
        raise ValueError(f"sample keypoints must be (K, 2) or ({count}, K, 2), got {keypoints.shape}")
    return list(keypoints)


class KeypointMetric(FrameMetric):
    """A metric on keypoints of generated and real frames.

    Args:
        extractor: a keypoint extractor, or its config (``dict(type="lmtk.Dlib68.v1")``). Share one
            instance between AKD and MKR so each frame is processed once (extractors cache by content).
    """

    transfer_reference = "driving"

    def __init__(self, extractor: KeypointExtractor | Mapping = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if extractor is None:
            extractor = dict(type="lmtk.Dlib68.v1")
        self.extractor = build(extractor, "keypoint_extractors")

    def keypoint_pairs(
        self, fake: torch.Tensor, real: torch.Tensor, sample: Mapping[str, Any]
    ) -> list[tuple[Keypoints | None, Keypoints | None]]:
        """``(fake, real)`` keypoints of every frame pair of a sample."""
        fake_images, real_images = to_uint8_frames(fake), to_uint8_frames(real)
        truths = frame_ground_truth(sample, len(fake_images))
        return [self.extractor.pair(f, r, t) for f, r, t in zip(fake_images, real_images, truths)]
