"""``lmtk.DlibFace.v1``: dlib's 128-d face recognition embedding as an identity extractor (for AED).

The paper used OpenFace embeddings; dlib's ResNet (trained for face verification, 0.6 is its usual
same-person threshold on the L2 distance) plays the same role and installs without a download.
"""

from __future__ import annotations

import os

import numpy as np

from ...registry import identity_extractors
from .base import IdentityEmbedding, IdentityExtractor
from .dlib_faces import FaceFinder, dlib_model_path, load_dlib_model

__all__ = ["DlibFace"]

_RECOGNITION = "dlib_face_recognition_resnet_model_v1.dat"
_PREDICTOR = "shape_predictor_5_face_landmarks.dat"


@identity_extractors.register("lmtk.DlibFace.v1")
class DlibFace(IdentityExtractor):
    """Face box (detector, then fallbacks), 5-point alignment, 128-d embedding.

    Args:
        upsample, fallback, margin, min_size: see :class:`~.dlib_faces.FaceFinder`. An embedding computed
            in a fallback box has ``detected=False``.
        num_jitters: dlib's test-time augmentation (0: one pass; n: n jittered passes averaged).
        padding: context around the aligned face chip (dlib's default 0.25).
        predictor_path, model_path: model files (default: those of face-recognition-models).
        cache_size: embeddings kept by image content.
    """

    dim = 128

    def __init__(
        self,
        upsample: int = 1,
        fallback: bool = True,
        margin: float = 0.1,
        min_size: int = 256,
        num_jitters: int = 0,
        padding: float = 0.25,
        predictor_path: str | os.PathLike | None = None,
        model_path: str | os.PathLike | None = None,
        cache_size: int = 1024,
    ) -> None:
        super().__init__(cache_size)
        self.finder = FaceFinder(upsample, fallback, margin, min_size)
        self.predictor = load_dlib_model("shape_predictor", dlib_model_path(_PREDICTOR, predictor_path))
        self.model = load_dlib_model("face_recognition_model_v1", dlib_model_path(_RECOGNITION, model_path))
        self.num_jitters, self.padding = max(0, int(num_jitters)), float(padding)

    def embed(self, image: np.ndarray) -> IdentityEmbedding | None:
        found = self.finder.locate(image)
        if found is None:
            return None
        work, _, box, method = found
        shape = self.predictor(work, box)
        vector = self.model.compute_face_descriptor(work, shape, self.num_jitters, self.padding)
        return IdentityEmbedding(np.array(vector), detected=method != "fallback")
