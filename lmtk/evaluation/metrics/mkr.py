"""``lmtk.MKR.v1``: missing keypoint rate, the share of real keypoints the generated frames lose.

Over all frame pairs: (keypoints detected in the real frame but not in the generated one) / (keypoints
detected in the real frame). A generated frame where no face is found loses all of them.

Example:
    >>> real = Keypoints(np.zeros((4, 2)))
    >>> missing_keypoint_rate([None, real], [real, real])  # the first generated frame lost its face
    0.5
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ...registry import metrics
from ..extractors.base import Keypoints
from .keypoint_base import KeypointMetric

__all__ = ["MKR", "count_missing", "missing_keypoint_rate"]


def count_missing(fake: Keypoints | None, real: Keypoints | None) -> tuple[int, int]:
    """``(missing, present)``: real keypoints not detected in ``fake``, and real keypoints detected."""
    if real is None:
        return 0, 0
    present = int(real.detected.sum())
    if fake is None:
        return present, present
    if len(fake) != len(real):
        raise ValueError(f"{len(fake)} generated keypoints but {len(real)} real ones")
    return int((real.detected & ~fake.detected).sum()), present


def missing_keypoint_rate(fake: Sequence[Keypoints | None], real: Sequence[Keypoints | None]) -> float:
    """MKR over frame pairs; NaN when no real frame has a detected keypoint."""
    counts = np.array([count_missing(f, r) for f, r in zip(fake, real, strict=True)]).reshape(-1, 2)
    missing, present = counts.sum(axis=0)
    return float(missing / present) if present else float("nan")


@metrics.register("lmtk.MKR.v1")
class MKR(KeypointMetric):
    """Missing keypoint rate (paper Table 1) with a configurable keypoint extractor.

    Args:
        extractor: keypoint extractor or config (default ``lmtk.Dlib68.v1``).
    """

    name = "mkr"
    empty_reason = "no keypoints were detected in any real frame"

    def evaluate_frames(
        self, fake: torch.Tensor, real: torch.Tensor, sample: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        entries = []
        for fake_kp, real_kp in self.keypoint_pairs(fake, real, sample):
            missing, present = count_missing(fake_kp, real_kp)
            entries.append({"missing": missing, "present": present})
        return entries

    def reduce(self, entries: list[dict[str, Any]]) -> dict[str, float]:
        missing = sum(r["missing"] for r in entries)
        present = sum(r["present"] for r in entries)
        return {
            "mkr": float(missing / present) if present else float("nan"),
            "mkr_keypoints": present,
            "mkr_frames_lost": sum(1 for r in entries if r["present"] and r["missing"] == r["present"]),
        }
