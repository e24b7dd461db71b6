"""``lmtk.AED.v1``: average Euclidean distance between identity embeddings of generated and real frames.

Per frame pair, the squared distance ``||e(fake) - e(real)||_2^2`` with ``e`` an identity extractor
(default ``lmtk.DlibFace.v1``, 128-d dlib embeddings; the paper used OpenFace), averaged over frame pairs.
Squared, because the published evaluation code of FOMM, whose numbers the paper's table compares with,
averages ``np.sum(np.abs(a - b) ** 2)`` (pose-evaluation ``cmp.py``; the paper's text says "MSE");
``squared=False`` averages plain distances instead. Frame pairs count when a face was
*detected* in the real frame (it defines the identity to keep); the generated frame may fall back to the
extractor's guessed face box, so a generated face the detector no longer sees is penalised, not skipped.
In cross-identity transfer ``real`` is the source image: AED then measures how well the source's
identity survives the driving motion.

Example:
    >>> same = IdentityEmbedding(np.zeros(4))
    >>> identity_distance(IdentityEmbedding(np.array([3.0, 4, 0, 0])), same)
    25.0
    >>> identity_distance(IdentityEmbedding(np.array([3.0, 4, 0, 0])), same, squared=False)
    5.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ...registry import build, metrics
from ..extractors.base import IdentityEmbedding, IdentityExtractor
from .base import FrameMetric, mean_or_nan, to_uint8_frames

__all__ = ["AED", "identity_distance"]


def identity_distance(
    fake: IdentityEmbedding | None, real: IdentityEmbedding | None, squared: bool = True
) -> float | None:
    """Squared L2 distance of two embeddings (``squared=False``: the L2 distance); None when the real
    face was not detected or the generated frame gave no embedding at all."""
    if real is None or fake is None or not real.detected:
        return None
    distance = float(np.linalg.norm(fake.vector - real.vector))
    return distance**2 if squared else distance


@metrics.register("lmtk.AED.v1")
class AED(FrameMetric):
    """Average Euclidean distance of identity embeddings (paper Table 1).

    Args:
        extractor: identity extractor or config (default ``lmtk.DlibFace.v1``).
        squared: average squared L2 distances, as FOMM's published evaluation code does (the
            default); False averages plain L2 distances.
    """

    name = "aed"
    transfer_reference = "source"
    empty_reason = "no face was detected in any real frame (in transfer: the source image)"

    def __init__(
        self, extractor: IdentityExtractor | Mapping = None, squared: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if extractor is None:
            extractor = dict(type="lmtk.DlibFace.v1")
        self.extractor = build(extractor, "identity_extractors")
        self.squared = squared

    def evaluate_frames(
        self, fake: torch.Tensor, real: torch.Tensor, sample: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        entries = []
        for f, r in zip(to_uint8_frames(fake), to_uint8_frames(real)):
            real_embedding = self.extractor(r)
            # without a detected real face the pair does not count: spare the generated frame's embedding
            usable = real_embedding is not None and real_embedding.detected
            distance = identity_distance(self.extractor(f), real_embedding, self.squared) if usable else None
            entries.append({"aed": distance})
        return entries

    def reduce(self, entries: list[dict[str, Any]]) -> dict[str, float]:
        used = [r["aed"] for r in entries if r["aed"] is not None]
        return {"aed": mean_or_nan(used), "aed_frames": len(used)}
