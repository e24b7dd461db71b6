"""``lmtk.SyntheticKeypoints.v1``: keypoints of lmtk's synthetic faces, from their ground truth.

The synthetic clips come with exact keypoints (``<clip>.json``, see
:mod:`lmtk.datasets.synthetic.writer`), but a generated frame has none, and no off-the-shelf detector
knows these cartoon faces. So this extractor is a *ground-truth-guided tracker*:

- in the real frame, the keypoints are the ground truth; those on a flat patch (nothing to
  localise) or outside the image are left out;
- in the generated frame, each keypoint is looked for by template matching: the real frame's patch
  around it is matched (normalised cross-correlation) within ``search_radius`` pixels; the best match is
  the keypoint's position, and a match scoring below ``min_score`` counts as a missing keypoint.

AKD then reads "how far did the generator put each facial feature from where the real frame has it",
to one pixel, and MKR "which features are no longer recognisable". Two limits to keep in mind: errors
larger than ``search_radius`` show up as misses (MKR), not as distances; and in cross-identity transfer
the real frame shows another face, so appearance matching is only a rough guide there.

Example:
    >>> frames, keypoints, _ = render_video(seed=1, num_frames=2, size=64)  # doctest: +SKIP
    >>> fake, real = SyntheticKeypoints().pair(frames[1], frames[1], keypoints[1])  # doctest: +SKIP
    >>> float(abs(fake.points - real.points).max())  # doctest: +SKIP
    0.0
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from ...functional.checks import check_shape
from ...registry import keypoint_extractors
from .base import KeypointExtractor, Keypoints, _ContentCache, as_uint8_image, content_key

__all__ = ["SyntheticKeypoints", "load_synthetic_keypoints", "synthetic_annotation_path"]


def synthetic_annotation_path(video: str | os.PathLike) -> Path:
    """``root/split/id0000#00.json`` for ``id0000#00.mp4`` or the frame folder ``id0000#00``."""
    video = Path(video)
    stem = video.name if video.is_dir() else video.stem
    return video.parent / f"{stem}.json"


def load_synthetic_keypoints(video: str | os.PathLike, size: int | None = None) -> np.ndarray | None:
    """Ground-truth keypoints ``(T, K, 2)`` of a synthetic clip, scaled to ``size`` px; None without JSON.

    The JSON holds pixel coordinates at the clip's own size with pixel centres on integers.
    """
    path = synthetic_annotation_path(video)
    if not path.is_file():
        return None
    annotation = json.loads(path.read_text())
    if "keypoints" not in annotation:
        return None
    keypoints = np.asarray(annotation["keypoints"], np.float64)
    if size is not None and annotation.get("size") and annotation["size"] != size:
        keypoints = (keypoints + 0.5) * (size / annotation["size"]) - 0.5
    return keypoints


@keypoint_extractors.register("lmtk.SyntheticKeypoints.v1")
class SyntheticKeypoints(KeypointExtractor):
    """Ground truth in the real frame, template matching in the generated one (module docstring).

    Args:
        patch_radius: template half-size in pixels; None: 6% of the image side (at least 2).
        search_radius: how far a keypoint may move and still be found; None: 10% of the side (at least 2).
        min_score: normalised cross-correlation below which a keypoint counts as missing.
        min_contrast: template standard deviation (grey levels) below which a ground-truth keypoint is
            left out, since a flat patch cannot be localised.
        cache_size: results kept by content.
    """

    needs_ground_truth = True

    def __init__(
        self,
        patch_radius: int | None = None,
        search_radius: int | None = None,
        min_score: float = 0.5,
        min_contrast: float = 4.0,
        cache_size: int = 1024,
    ) -> None:
        super().__init__(cache_size)
        self.patch_radius, self.search_radius = patch_radius, search_radius
        self.min_score, self.min_contrast = float(min_score), float(min_contrast)
        self._pairs = _ContentCache(cache_size)

    def _radii(self, side: int) -> tuple[int, int]:
        patch = self.patch_radius if self.patch_radius is not None else max(2, round(0.06 * side))
        search = self.search_radius if self.search_radius is not None else max(2, round(0.1 * side))
        return int(patch), int(search)

    @staticmethod
    def _distance(search: int) -> np.ndarray:
        offsets = np.arange(-search, search + 1, dtype=np.float32)
        return offsets[:, None] ** 2 + offsets[None, :] ** 2

    def detect(self, image: np.ndarray) -> Keypoints | None:
        raise ValueError(
            "SyntheticKeypoints finds keypoints from a clip's ground truth, not from pixels alone: call "
            "pair(fake, real, ground_truth) with the real frame's keypoints (the protocols read them from "
            "the clip's JSON with load_synthetic_keypoints); use lmtk.Dlib68.v1 to detect faces"
        )

    def pair(
        self,
        fake: np.ndarray | torch.Tensor,
        real: np.ndarray | torch.Tensor,
        ground_truth: np.ndarray | None = None,
    ) -> tuple[Keypoints | None, Keypoints | None]:
        if ground_truth is None:
            self.detect(as_uint8_image(real))  # raises with directions
        fake, real = as_uint8_image(fake), as_uint8_image(real)
        ground_truth = np.asarray(ground_truth, np.float64)
        check_shape(ground_truth, ["K", 2], "ground_truth")
        if fake.shape != real.shape:
            raise ValueError(f"fake and real frames differ in size: {fake.shape} vs {real.shape}")
        key = content_key(fake, real, ground_truth)
        return self._pairs.get_or_compute(key, lambda: self._track(fake, real, ground_truth))

    def _track(
        self, fake: np.ndarray, real: np.ndarray, ground_truth: np.ndarray
    ) -> tuple[Keypoints, Keypoints]:
        patch, search = self._radii(min(real.shape[:2]))
        pad = patch + search
        # reflect padding keeps features near the border matchable
        real_padded = cv2.copyMakeBorder(real, pad, pad, pad, pad, cv2.BORDER_REFLECT_101).astype(np.float32)
        fake_padded = cv2.copyMakeBorder(fake, pad, pad, pad, pad, cv2.BORDER_REFLECT_101).astype(np.float32)
        height, width = real.shape[:2]
        count = len(ground_truth)
        usable = np.zeros(count, bool)
        found = np.zeros(count, bool)
        tracked = ground_truth.copy()
        for k, (x, y) in enumerate(ground_truth):
            cx, cy = round(x), round(y)
            if not (0 <= cx < width and 0 <= cy < height):
                continue
            px, py = cx + pad, cy + pad
            template = real_padded[py - patch : py + patch + 1, px - patch : px + patch + 1]
            if template.std() < self.min_contrast:
                continue
            usable[k] = True
            window = fake_padded[py - pad : py + pad + 1, px - pad : px + pad + 1]
            response = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
            # a repeated pattern (stripes, checks) can match equally well elsewhere: prefer the nearest
            response = np.nan_to_num(response, nan=-1.0) - 1e-6 * self._distance(search)
            iy, ix = np.unravel_index(int(np.argmax(response)), response.shape)
            if response[iy, ix] < self.min_score:
                continue
            found[k] = True
            # integer offsets: an unchanged feature lands exactly on its ground truth
            tracked[k] = (x + ix - search, y + iy - search)
        real_keypoints = Keypoints(ground_truth, visible=usable, method="ground_truth")
        fake_keypoints = Keypoints(tracked, visible=found, method="tracked")
        return fake_keypoints, real_keypoints
