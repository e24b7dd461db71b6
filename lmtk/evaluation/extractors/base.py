"""What keypoint and identity extractors return, and the small interface the metrics call.

A **keypoint extractor** maps an ``(H, W, 3)`` uint8 RGB image to :class:`Keypoints` (or None when it
finds nothing). Two masks travel with the coordinates because they answer different questions:

- ``visible``: the coordinates are usable for a distance (AKD);
- ``detected``: a detector confirmed the point, as opposed to a fallback guess (MKR counts these).

Dlib's face detector, for instance, often misses faces on tight 256 px crops; :class:`~.dlib68.Dlib68`
then runs the landmark predictor in a box covering most of the image, which gives usable (``visible``)
but unconfirmed (not ``detected``) landmarks.

Metrics never call :meth:`KeypointExtractor.detect` directly: they call
:meth:`KeypointExtractor.pair` with the generated and the real frame (and the real frame's ground truth
when the data has it), so an extractor that needs ground truth (:class:`~.synthetic.SyntheticKeypoints`)
fits the same interface as a detector.

An **identity extractor** maps an image to an :class:`IdentityEmbedding` (or None).

Both cache their last results by image content: AKD and MKR evaluated together run the detector once per
frame.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...functional.checks import check_shape
from ...functional.image_range import float_to_uint8

__all__ = [
    "IdentityEmbedding",
    "IdentityExtractor",
    "KeypointExtractor",
    "Keypoints",
    "as_uint8_image",
    "content_key",
]


def as_uint8_image(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """An image as ``(H, W, 3)`` uint8 RGB: a uint8 array as is, a ``(3, H, W)`` tensor in [-1, 1] converted."""
    if isinstance(image, torch.Tensor):
        check_shape(image, [3, "H", "W"], "image")
        image = float_to_uint8(image)
        return np.ascontiguousarray(image.permute(1, 2, 0).cpu().numpy())
    image = np.asarray(image)
    check_shape(image, ["H", "W", 3], "image", dtype=np.uint8)
    return np.ascontiguousarray(image)


def content_key(*arrays: np.ndarray | None) -> Hashable:
    """A short digest of array contents and shapes, for caches keyed by what an image shows."""
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        array = np.ascontiguousarray(array)
        digest.update(str((array.shape, array.dtype.str)).encode())
        digest.update(array.tobytes())
    return digest.digest()


class _ContentCache:
    """A small LRU cache of results keyed by :func:`content_key`."""

    def __init__(self, size: int) -> None:
        self.size = max(0, int(size))
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        if self.size == 0:
            return compute()
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = compute()
        self._items[key] = value
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


@dataclass
class Keypoints:
    """Keypoints of one image.

    Attributes:
        points: ``(K, 2)`` float ``(x, y)`` pixels, pixel centres on integers.
        visible: ``(K,)`` bool, the coordinates are usable for distances.
        detected: ``(K,)`` bool, confirmed by a detector rather than guessed by a fallback.
        method: how they were found (``"detector"``, ``"upsampled"``, ``"fallback"``, ``"tracked"``,
            ``"ground_truth"`` ...), for reports.
    """

    points: np.ndarray
    visible: np.ndarray | None = None
    detected: np.ndarray | None = None
    method: str = "detector"

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, np.float64)
        check_shape(self.points, ["K", 2], "points")
        count = len(self.points)
        self.visible = self._mask(self.visible, count, "visible")
        # a detected point is a usable point
        self.detected = self._mask(self.detected, count, "detected") & self.visible

    @staticmethod
    def _mask(mask: np.ndarray | None, count: int, name: str) -> np.ndarray:
        if mask is None:
            return np.ones(count, bool)
        mask = np.asarray(mask, bool)
        if mask.shape == ():
            return np.full(count, bool(mask))
        if mask.shape != (count,):
            raise ValueError(f"{name} must be ({count},), got {mask.shape}")
        return mask

    def __len__(self) -> int:
        return len(self.points)

    def scaled(self, factor: float) -> Keypoints:
        """The same keypoints in an image resized by ``factor`` (pixel centres stay on integers)."""
        points = (self.points + 0.5) * factor - 0.5
        return Keypoints(points, self.visible.copy(), self.detected.copy(), self.method)


class KeypointExtractor:
    """Base class: implement :meth:`detect`; metrics call :meth:`pair`.

    Args:
        cache_size: detections kept, keyed by image content (AKD and MKR share an extractor and each
            look at twice a batch of frames, so keep this above four times the batch size).
    """

    #: Whether :meth:`pair` needs the real frame's ground-truth keypoints.
    needs_ground_truth: bool = False
    #: Number of keypoints per image (None when it varies).
    num_keypoints: int | None = None

    def __init__(self, cache_size: int = 1024) -> None:
        self._cache = _ContentCache(cache_size)

    def detect(self, image: np.ndarray) -> Keypoints | None:
        """Keypoints of one ``(H, W, 3)`` uint8 RGB image, or None when nothing is found."""
        raise NotImplementedError

    def __call__(self, image: np.ndarray | torch.Tensor) -> Keypoints | None:
        image = as_uint8_image(image)
        return self._cache.get_or_compute(content_key(image), lambda: self.detect(image))

    def pair(
        self,
        fake: np.ndarray | torch.Tensor,
        real: np.ndarray | torch.Tensor,
        ground_truth: np.ndarray | None = None,
    ) -> tuple[Keypoints | None, Keypoints | None]:
        """Keypoints of a generated frame and of its real counterpart (``ground_truth`` ignored here)."""
        return self(fake), self(real)


@dataclass
class IdentityEmbedding:
    """The identity embedding of one image.

    Attributes:
        vector: ``(D,)`` float embedding.
        detected: whether a face detector found the face it was computed from (not a fallback box).
    """

    vector: np.ndarray
    detected: bool = True

    def __post_init__(self) -> None:
        self.vector = np.asarray(self.vector, np.float64).reshape(-1)


class IdentityExtractor:
    """Base class: implement :meth:`embed`; call the extractor on an image.

    Args:
        cache_size: embeddings kept, keyed by image content (a transfer compares every generated frame
            with the same source image).
    """

    def __init__(self, cache_size: int = 1024) -> None:
        self._cache = _ContentCache(cache_size)

    def embed(self, image: np.ndarray) -> IdentityEmbedding | None:
        """The embedding of one ``(H, W, 3)`` uint8 RGB image, or None when no face is found."""
        raise NotImplementedError

    def __call__(self, image: np.ndarray | torch.Tensor) -> IdentityEmbedding | None:
        image = as_uint8_image(image)
        return self._cache.get_or_compute(content_key(image), lambda: self.embed(image))
