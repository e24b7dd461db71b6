"""``lmtk.Dlib68.v1``: dlib's 68 facial landmarks (iBUG 300-W layout) as a keypoint extractor.

The paper measured AKD/MKR on faces with the face-alignment network of Bulat & Tzimiropoulos (2017);
dlib's regression-tree predictor (Kazemi & Sullivan, 2014) gives the same 68-point layout without a
deep-learning download, so numbers are comparable between lmtk runs but not with the paper's table.

Example:
    >>> extractor = Dlib68()  # doctest: +SKIP
    >>> keypoints = extractor(image)  # doctest: +SKIP
    >>> keypoints.points.shape, keypoints.method  # doctest: +SKIP
    ((68, 2), 'detector')
"""

from __future__ import annotations

import os

import numpy as np

from ...registry import keypoint_extractors
from .base import KeypointExtractor, Keypoints
from .dlib_faces import FaceFinder, dlib_model_path, load_dlib_model

__all__ = ["Dlib68"]

_PREDICTOR = "shape_predictor_68_face_landmarks.dat"


@keypoint_extractors.register("lmtk.Dlib68.v1")
class Dlib68(KeypointExtractor):
    """Face box by dlib's HOG detector (see :class:`FaceFinder` for the fallbacks), then 68 landmarks.

    Landmarks found in a fallback box are ``visible`` but not ``detected``: AKD may use them, MKR counts
    them as missing.

    Args:
        upsample, fallback, margin, min_size: see :class:`~.dlib_faces.FaceFinder`.
        predictor_path: the 68-point model file (default: the one of face-recognition-models).
        cache_size: detections kept by image content.
    """

    num_keypoints = 68

    def __init__(
        self,
        upsample: int = 1,
        fallback: bool = True,
        margin: float = 0.1,
        min_size: int = 256,
        predictor_path: str | os.PathLike | None = None,
        cache_size: int = 1024,
    ) -> None:
        super().__init__(cache_size)
        self.finder = FaceFinder(upsample, fallback, margin, min_size)
        self.predictor = load_dlib_model("shape_predictor", dlib_model_path(_PREDICTOR, predictor_path))

    def detect(self, image: np.ndarray) -> Keypoints | None:
        found = self.finder.locate(image)
        if found is None:
            return None
        work, scale, box, method = found
        shape = self.predictor(work, box)
        points = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
        keypoints = Keypoints(points, detected=method != "fallback", method=method)
        return keypoints.scaled(1.0 / scale) if scale != 1.0 else keypoints
