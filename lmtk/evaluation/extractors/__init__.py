"""Keypoint and identity extractors for the semantic metrics (AKD, MKR, AED).

Registered in :data:`lmtk.registry.keypoint_extractors` (``lmtk.Dlib68.v1``,
``lmtk.SyntheticKeypoints.v1``) and :data:`lmtk.registry.identity_extractors` (``lmtk.DlibFace.v1``).
dlib is imported only when a dlib extractor is built, so these modules load without it.
"""

from .base import IdentityEmbedding, IdentityExtractor, KeypointExtractor, Keypoints, as_uint8_image
from .dlib68 import Dlib68
from .dlib_faces import FaceFinder, dlib_model_dir, import_dlib
from .dlib_identity import DlibFace
from .synthetic import SyntheticKeypoints, load_synthetic_keypoints, synthetic_annotation_path

__all__ = [
    "Dlib68",
    "DlibFace",
    "FaceFinder",
    "IdentityEmbedding",
    "IdentityExtractor",
    "KeypointExtractor",
    "Keypoints",
    "SyntheticKeypoints",
    "as_uint8_image",
    "dlib_model_dir",
    "import_dlib",
    "load_synthetic_keypoints",
    "synthetic_annotation_path",
]
