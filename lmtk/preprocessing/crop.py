"""Square crop boxes: frame a face, crop and resize a frame to a box, paste a generated crop back.

Coordinates are source pixels with the top-left corner of the top-left pixel at ``(0, 0)``, so a box
``Box(0, 0, W, H)`` covers the whole ``W×H`` image and pixel ``(x, y)`` spans ``[x, x + 1)``.
A box may reach outside the image: :func:`crop_to_box` pads the missing part (edge pixels or black)
and :func:`paste_back` only writes the part inside the image. A box of None stands for the whole image
(what :func:`~lmtk.preprocessing.face_detection.face_box_for_image` gives when it finds no face), so
the same code handles images with and without a face.

Example:
    >>> image = np.zeros((480, 640, 3), np.uint8)
    >>> box = framing_box(center=(320.0, 200.0), face_size=100.0, margin=0.6, shift=0.1)
    >>> box.to_int()
    (210, 100, 430, 320)
    >>> crop = crop_to_box(image, box, 128)
    >>> crop.shape
    (128, 128, 3)
    >>> paste_back(image, crop, box).shape
    (480, 640, 3)
    >>> crop_to_box(image, None, 128).shape  # None: the whole image, resized
    (128, 128, 3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from lmtk.datasets.transforms import resize_image

from ..functional.checks import check_shape

__all__ = ["PAD_MODES", "Box", "CroppedVideo", "crop_to_box", "feather_mask", "framing_box", "paste_back"]

PAD_MODES = ("edge", "constant")


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``[x0, x1) × [y0, y1)`` in pixels (floats); the crop boxes here are square.

    Args:
        x0, y0: top-left corner.
        x1, y1: bottom-right corner (exclusive), ``x1 > x0`` and ``y1 > y0``.
    """

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        values = (self.x0, self.y0, self.x1, self.y1)
        if not all(math.isfinite(v) for v in values) or self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError(f"a box needs finite corners with x1 > x0 and y1 > y0, got {values}")

    @classmethod
    def from_center(cls, cx: float, cy: float, side: float) -> Box:
        """The square of side ``side`` centred on ``(cx, cy)``."""
        half = float(side) / 2
        return cls(float(cx) - half, float(cy) - half, float(cx) + half, float(cy) + half)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def side(self) -> float:
        """The longer side (the side of a square box)."""
        return max(self.width, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    def square(self) -> Box:
        """The square of side :attr:`side` with the same centre."""
        return Box.from_center(*self.center, self.side)

    def expand(self, margin: float) -> Box:
        """The box grown by ``margin × side`` on every side (same centre): side × (1 + 2·margin)."""
        if 1 + 2 * margin <= 0:
            raise ValueError(f"margin must be > -0.5, got {margin}")
        dx, dy = margin * self.width, margin * self.height
        return Box(self.x0 - dx, self.y0 - dy, self.x1 + dx, self.y1 + dy)

    def shift(self, dx: float = 0.0, dy: float = 0.0) -> Box:
        """The box moved by ``(dx, dy)`` pixels."""
        return Box(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)

    def scale(self, factor: float) -> Box:
        """The box in an image resized by ``factor`` (corners multiplied), e.g. from detection pixels."""
        return Box(self.x0 * factor, self.y0 * factor, self.x1 * factor, self.y1 * factor)

    def union(self, other: Box) -> Box:
        """The smallest box holding both."""
        return Box(
            min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1)
        )

    def clip_to(self, height: int, width: int) -> Box:
        """The same box moved (not resized) to lie inside a ``height × width`` image where it fits.

        A box longer than the image along an axis is centred on the image along that axis instead;
        the size never changes, so a square stays a square and the crop keeps its scale.
        """

        def place(low: float, length: float, limit: int) -> float:
            if length >= limit:
                return (limit - length) / 2
            return min(max(low, 0.0), limit - length)

        x0 = place(self.x0, self.width, width)
        y0 = place(self.y0, self.height, height)
        return Box(x0, y0, x0 + self.width, y0 + self.height)

    def inside(self, height: int, width: int) -> bool:
        """Whether the box lies entirely inside a ``height × width`` image."""
        return self.x0 >= 0 and self.y0 >= 0 and self.x1 <= width and self.y1 <= height

    def to_int(self) -> tuple[int, int, int, int]:
        """Whole-pixel corners ``(x0, y0, x1, y1)``: the top-left rounded, the side rounded (at least 1).

        A square box gives a square of whole pixels, ``x1 - x0 == y1 - y0``.
        """
        x0, y0 = round(self.x0), round(self.y0)
        return x0, y0, x0 + max(1, round(self.width)), y0 + max(1, round(self.height))

    def to_list(self, decimals: int = 2) -> list[float]:
        """``[x0, y0, x1, y1]`` rounded, for JSON."""
        return [round(float(v), decimals) for v in (self.x0, self.y0, self.x1, self.y1)]


def framing_box(
    center: tuple[float, float], face_size: float, margin: float = 0.6, shift: float = 0.1
) -> Box:
    """The square crop box around a face: side ``(1 + 2·margin) × face_size``, centre moved down.

    Args:
        center: face centre ``(x, y)`` in pixels (the mean of its landmarks).
        face_size: face side in pixels (the larger extent of its landmarks, about ear to ear).
        margin: room on each side, in face sizes. 0.6 gives a head-and-shoulders crop.
        shift: downward move of the box centre, in face sizes, to make room for the neck and shoulders
            (negative: more room above the head).
    """
    if face_size <= 0:
        raise ValueError(f"face_size must be positive, got {face_size}")
    cx, cy = center
    return Box.from_center(cx, cy + shift * face_size, (1 + 2 * margin) * face_size)


def _check_image(image: np.ndarray, name: str = "image") -> None:
    check_shape(image, ["H", "W", 3], name, dtype=np.uint8)


def _whole_if_none(box: Box | None, height: int, width: int) -> Box:
    if box is None:
        return Box(0.0, 0.0, float(width), float(height))
    if not isinstance(box, Box):
        raise TypeError(f"box must be a Box or None (the whole image), got {type(box).__name__}")
    return box


def _window(box: Box, height: int, width: int) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """The whole-pixel box and its part inside the image, both as (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box.to_int()
    return (x0, y0, x1, y1), (max(x0, 0), max(y0, 0), min(x1, width), min(y1, height))


def crop_to_box(image: np.ndarray, box: Box | None, size: int, pad: str = "edge") -> np.ndarray:
    """Cut ``box`` out of ``image`` and resize it to ``size × size`` (area averaging when shrinking).

    Args:
        image: ``(H, W, 3)`` uint8.
        box: the square to cut, in pixels; it may reach outside the image. None: the whole image
            (resized to a square, so a non-square image is stretched).
        size: output side in pixels.
        pad: how to fill the part of the box outside the image: ``"edge"`` repeats the border pixels,
            ``"constant"`` fills black.

    Returns:
        ``(size, size, 3)`` uint8.
    """
    _check_image(image)
    if pad not in PAD_MODES:
        raise ValueError(f"pad must be one of {', '.join(PAD_MODES)}, got {pad!r}")
    height, width = image.shape[:2]
    box = _whole_if_none(box, height, width)
    (x0, y0, x1, y1), (ix0, iy0, ix1, iy1) = _window(box, height, width)
    if ix1 <= ix0 or iy1 <= iy0:
        if pad == "constant":
            return np.zeros((size, size, 3), np.uint8)
        # nothing of the image inside: the nearest pixels, repeated, are what "edge" would give
        ix0, iy0 = min(max(x0, 0), width - 1), min(max(y0, 0), height - 1)
        ix1, iy1 = ix0 + 1, iy0 + 1
    region = image[iy0:iy1, ix0:ix1]
    borders = (max(iy0 - y0, 0), max(y1 - iy1, 0), max(ix0 - x0, 0), max(x1 - ix1, 0))
    if any(borders):
        mode = cv2.BORDER_REPLICATE if pad == "edge" else cv2.BORDER_CONSTANT
        region = cv2.copyMakeBorder(np.ascontiguousarray(region), *borders, mode, value=(0, 0, 0))
    return np.ascontiguousarray(resize_image(region, size))


class CroppedVideo:
    """A video reader whose frames come out cropped to one box and resized, decoded only when asked.

    Wraps any reader of :mod:`lmtk.datasets.video_reader` (``len``, ``fps``, ``size``,
    ``get_frames``), so a driving video can be cropped on the fly, e.g. with the box of
    :func:`~lmtk.preprocessing.face_tracks.face_box_for_video`.

    Args:
        reader: the video.
        box: the crop box in the video's pixels; None: the whole frame (resized).
        size: output side in pixels.
        pad: see :func:`crop_to_box`.
    """

    def __init__(self, reader: Any, box: Box | None, size: int, pad: str = "edge") -> None:
        self.reader, self.box, self.crop_size, self.pad = reader, box, int(size), pad
        self.path = getattr(reader, "path", None)

    def __len__(self) -> int:
        return len(self.reader)

    @property
    def fps(self) -> float:
        return self.reader.fps

    @property
    def size(self) -> tuple[int, int]:
        return self.crop_size, self.crop_size

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Frames ``indices`` as ``(N, size, size, 3)`` uint8."""
        frames = self.reader.get_frames(indices)
        crops = [crop_to_box(frame, self.box, self.crop_size, self.pad) for frame in frames]
        return np.stack(crops) if crops else np.zeros((0, *self.size, 3), np.uint8)


def feather_mask(height: int, width: int, feather: float) -> np.ndarray:
    """A ``(height, width)`` float32 blending weight: 1 inside, falling smoothly to 0 at the border.

    Args:
        height, width: mask size in pixels.
        feather: width of the falling band as a fraction of the shorter side (0: a hard edge, all ones).
    """
    if not 0 <= feather <= 0.5:
        raise ValueError(f"feather must be in [0, 0.5], got {feather}")
    band = feather * min(height, width)
    if band <= 0:
        return np.ones((height, width), np.float32)

    def ramp(n: int) -> np.ndarray:
        # distance of each pixel centre to the nearest edge, so the outermost ring gets a small weight
        r = np.clip(np.minimum(np.arange(n) + 0.5, n - 0.5 - np.arange(n)) / band, 0.0, 1.0)
        return r * r * (3 - 2 * r)  # smoothstep: no visible kink where the band ends

    return np.minimum.outer(ramp(height), ramp(width)).astype(np.float32)


def paste_back(original: np.ndarray, crop: np.ndarray, box: Box | None, feather: float = 0.1) -> np.ndarray:
    """Put a generated ``crop`` of ``box`` back into the ``original`` image, blended at the seam.

    The crop is resized to the box, and mixed with the original through :func:`feather_mask`, so the
    seam is soft and lies inside the box. Pixels outside the box are exactly the original ones.

    Args:
        original: ``(H, W, 3)`` uint8, the image the box was cut from (not modified).
        crop: ``(S, S, 3)`` uint8, e.g. a generated frame of the model size.
        box: the box the crop stands for (as given to :func:`crop_to_box`); None: the whole image,
            so the crop is resized to the original's size.
        feather: width of the blending band, as a fraction of the box side.

    Returns:
        ``(H, W, 3)`` uint8, a new image.
    """
    _check_image(original, "original")
    _check_image(crop, "crop")
    height, width = original.shape[:2]
    box = _whole_if_none(box, height, width)
    (x0, y0, x1, y1), (ix0, iy0, ix1, iy1) = _window(box, height, width)
    result = original.copy()
    if ix1 <= ix0 or iy1 <= iy0:
        return result
    resized = resize_image(crop, (y1 - y0, x1 - x0))
    inside = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
    weight = feather_mask(y1 - y0, x1 - x0, feather)[inside][..., None]
    target = original[iy0:iy1, ix0:ix1].astype(np.float32)
    mixed = target + weight * (resized[inside].astype(np.float32) - target)
    result[iy0:iy1, ix0:ix1] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return result
