"""``lmtk.MKR.v1``: missing keypoint rate, the share of real keypoints the generated frames lose.

Per frame pair, (keypoints detected in the real frame but not in the generated one) / (keypoints
detected in the real frame); the score is the mean of these rates over frame pairs whose real frame has
a detected keypoint, as in FOMM's published evaluation code (pose-evaluation ``cmp_with_missing.py``).
A generated frame where no face is found loses all of them. The metric also reports the pooled rate,
all missing keypoints over all real ones (``mkr_pooled``), which weighs frames by their keypoint count.

Example:
    >>> real = Keypoints(np.zeros((4, 2)))
    >>> missing_keypoint_rate([None, real], [real, real])  # the first generated frame lost its face
    0.5
    >>> few = Keypoints(np.zeros((4, 2)), detected=[True, False, False, False])
    >>> missing_keypoint_rate([None, real], [few, real])  # frame rates 1 and 0
    0.5
    >>> missing_keypoint_rate([None, real], [few, real], pooled=True)  # 1 of 5 keypoints
    0.2
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


def missing_keypoint_rate(
    fake: Sequence[Keypoints | None], real: Sequence[Keypoints | None], pooled: bool = False
) -> float:
    """MKR: the mean per-frame rate over frame pairs (``pooled``: missing over present keypoints of all
    frames); NaN when no real frame has a detected keypoint."""
    counts = np.array([count_missing(f, r) for f, r in zip(fake, real, strict=True)]).reshape(-1, 2)
    return _pooled_rate(counts) if pooled else _mean_frame_rate(counts)


def _mean_frame_rate(counts: np.ndarray) -> float:
    """The mean of ``missing / present`` over the ``(missing, present)`` rows with ``present > 0``."""
    counts = counts[counts[:, 1] > 0]
    return float(np.mean(counts[:, 0] / counts[:, 1])) if len(counts) else float("nan")


def _pooled_rate(counts: np.ndarray) -> float:
    missing, present = counts.sum(axis=0)
    return float(missing / present) if present else float("nan")


@metrics.register("lmtk.MKR.v1")
class MKR(KeypointMetric):
    """Missing keypoint rate (paper Table 1) with a configurable keypoint extractor.

    ``mkr`` is the mean per-frame rate; ``mkr_pooled`` the rate over all keypoints of all frames.

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
        counts = np.array([(r["missing"], r["present"]) for r in entries], np.int64).reshape(-1, 2)
        return {
            "mkr": _mean_frame_rate(counts),
            "mkr_pooled": _pooled_rate(counts),
            "mkr_frames": int((counts[:, 1] > 0).sum()),
            "mkr_keypoints": int(counts[:, 1].sum()),
            "mkr_frames_lost": sum(1 for r in entries if r["present"] and r["missing"] == r["present"]),
        }
