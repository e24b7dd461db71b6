"""``lmtk.AKD.v1``: average keypoint distance, in pixels, between generated and real frames.

Per frame pair, the absolute coordinate differences ``|x_fake - x_real|`` and ``|y_fake - y_real|`` of
every keypoint detected in both frames are averaged; the score is the mean over frame pairs that share
at least one keypoint (frames where the generated face is lost count in MKR instead). This is what
FOMM's published evaluation code computes (pose-evaluation ``cmp_kp.py`` / ``cmp_with_missing.py``:
``np.mean(np.abs(gt - pred))`` per frame), whose numbers the paper's table compares with;
``euclidean=True`` averages the Euclidean distance of each keypoint instead. Distances are in pixels of
the evaluated frames (the model size; the paper's numbers are at 256 px).

Example:
    >>> real = Keypoints(np.zeros((3, 2)))
    >>> fake = Keypoints(np.full((3, 2), [3.0, 4.0]))
    >>> average_keypoint_distance([fake], [real])
    3.5
    >>> average_keypoint_distance([fake], [real], euclidean=True)
    5.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ...registry import metrics
from ..extractors.base import KeypointExtractor, Keypoints
from .base import mean_or_nan
from .keypoint_base import KeypointMetric

__all__ = ["AKD", "average_keypoint_distance", "keypoint_distances"]


def keypoint_distances(
    fake: Keypoints | None,
    real: Keypoints | None,
    include_undetected: bool = False,
    euclidean: bool = False,
) -> np.ndarray:
    """Distances ``(n,)`` of the keypoints detected in ``real`` and in ``fake``: each keypoint's mean
    absolute coordinate difference ``(|dx| + |dy|) / 2``, or with ``euclidean`` its Euclidean distance.

    With ``include_undetected``, generated keypoints that are only ``visible`` (a fallback guess) count
    too. The real frame's keypoints must always be detected: it defines which keypoints exist.
    """
    if fake is None or real is None:
        return np.zeros(0)
    if len(fake) != len(real):
        raise ValueError(f"{len(fake)} generated keypoints but {len(real)} real ones")
    common = real.detected & (fake.visible if include_undetected else fake.detected)
    difference = fake.points[common] - real.points[common]
    return np.linalg.norm(difference, axis=1) if euclidean else np.abs(difference).mean(axis=1)


def average_keypoint_distance(
    fake: Sequence[Keypoints | None],
    real: Sequence[Keypoints | None],
    include_undetected: bool = False,
    euclidean: bool = False,
) -> float:
    """AKD over frame pairs: the mean of per-frame mean distances; NaN when no pair shares a keypoint."""
    per_frame = [
        keypoint_distances(f, r, include_undetected, euclidean) for f, r in zip(fake, real, strict=True)
    ]
    return mean_or_nan([d.mean() for d in per_frame if len(d)])


@metrics.register("lmtk.AKD.v1")
class AKD(KeypointMetric):
    """Average keypoint distance (paper Table 1) with a configurable keypoint extractor.

    Args:
        extractor: keypoint extractor or config (default ``lmtk.Dlib68.v1``).
        include_undetected: also use generated keypoints that the extractor only guessed (a dlib
            fallback box), so a lost face costs a distance rather than being skipped.
        euclidean: average each keypoint's Euclidean distance instead of the mean absolute coordinate
            difference of FOMM's published evaluation code (the default).
    """

    name = "akd"
    empty_reason = "no frame pair had keypoints detected in both the real and the generated frame"

    def __init__(
        self,
        extractor: KeypointExtractor | Mapping = None,
        include_undetected: bool = False,
        euclidean: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(extractor, **kwargs)
        self.include_undetected = include_undetected
        self.euclidean = euclidean

    def evaluate_frames(
        self, fake: torch.Tensor, real: torch.Tensor, sample: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        entries = []
        for fake_kp, real_kp in self.keypoint_pairs(fake, real, sample):
            distances = keypoint_distances(fake_kp, real_kp, self.include_undetected, self.euclidean)
            entries.append(
                {"akd": float(distances.mean()) if len(distances) else None, "count": len(distances)}
            )
        return entries

    def reduce(self, entries: list[dict[str, Any]]) -> dict[str, float]:
        used = [r["akd"] for r in entries if r["akd"] is not None]
        return {"akd": mean_or_nan(used), "akd_frames": len(used)}
