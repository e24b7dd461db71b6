"""Automatic start frame: the driving frame whose pose is nearest the source's, found in latent space.

Relative transfer (eq. 12) moves the source by the motion between a driving frame and a reference
driving frame, ``w_{r->t} - w_{r->start}``. It looks right only if the reference frame shows the same
pose as the source. Instead of a landmark detector, LIA's own motion magnitudes measure pose: the start
frame is the driving frame ``t`` whose ``A_{r->t}`` is nearest (L2) the source's ``A_{r->s}``.

The search is one streaming pass that computes only the motion code of each driving frame (no feature
pyramid, no decoding). Once the start frame is known the relative transfer of frame ``t`` no longer
depends on the order frames are processed in, so animating "forward from the start frame to the end and
backward to the beginning" is one ordinary forward pass with ``driving_first = frame[start]``, and the
output keeps the driving video's time order.

Example:
    >>> search = NearestMagnitudes(torch.zeros(5))
    >>> search.update(torch.tensor([[3.0, 0, 0, 0, 0], [0.5, 0, 0, 0, 0]]))
    >>> search.update(torch.tensor([[1.0, 0, 0, 0, 0]]))
    >>> search.index, round(search.distance, 3)
    (1, 0.5)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from ..functional.checks import check_shape

__all__ = ["NearestMagnitudes", "find_start_frame", "magnitude_distances"]


def magnitude_distances(source: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """L2 distances ``(N,)`` between source magnitudes ``(M,)`` or ``(1, M)`` and ``magnitudes`` ``(N, M)``."""
    source = source.reshape(1, -1).float()
    magnitudes = magnitudes.float()
    check_shape(magnitudes, ["N", source.shape[1]], "magnitudes")
    return torch.linalg.vector_norm(magnitudes - source, dim=1)


class NearestMagnitudes:
    """Running arg-min of :func:`magnitude_distances` over batches that arrive in frame order.

    Attributes:
        index: the nearest frame so far (-1 before the first update); the earliest one on ties.
        distance: its distance (``inf`` before the first update).
        count: frames seen.
    """

    def __init__(self, source_magnitudes: torch.Tensor) -> None:
        self.source = source_magnitudes.detach()
        self.index = -1
        self.distance = float("inf")
        self.count = 0

    def update(self, magnitudes: torch.Tensor) -> None:
        """Take the next ``(N, M)`` frames' magnitudes."""
        if magnitudes.shape[0]:
            distances = magnitude_distances(self.source.to(magnitudes.device), magnitudes)
            best = int(torch.argmin(distances))
            if float(distances[best]) < self.distance:
                self.index, self.distance = self.count + best, float(distances[best])
        self.count += magnitudes.shape[0]


def find_start_frame(
    net,
    source_code: torch.Tensor,
    batches: Iterable[torch.Tensor],
    encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[int, float]:
    """The index of the driving frame nearest the source in motion magnitudes, and its distance.

    Args:
        net: an :class:`~lmtk.models.lia_generator.LIAGenerator` (``model.net``).
        source_code: the source's code ``z_{s->r}`` ``(1, D)``.
        batches: the driving frames, in order, as ``(B, 3, S, S)`` tensors in [-1, 1].
        encode: frames to codes ``(B, D)``; default ``net.encode_code``.
    """
    encode = encode or net.encode_code
    search = NearestMagnitudes(net.magnitudes(source_code)[0])
    for batch in batches:
        search.update(net.magnitudes(encode(batch)))
    if search.index < 0:
        raise ValueError("the driving video has no frames")
    return search.index, search.distance
