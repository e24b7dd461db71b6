"""Procedural synthetic talking faces with exact ground truth (keypoints and motion factors).

Useful wherever real video is too slow or too opaque: CPU tests, smoke training runs, and checking that
a learned motion direction tracks one known factor (turn, blink, mouth opening ...).

- :mod:`.render`: identities and the frame renderer; :func:`render_video`.
- :mod:`.motion`: the smooth random processes behind each motion factor.
- :mod:`.writer`: :func:`make_synthetic_dataset` writes MP4 or PNG clips with JSON annotations.
- :mod:`.dataset`: :class:`SyntheticFaceVideos`, rendered in memory (``lmtk.SyntheticFaceVideos.v1``).
"""

from .dataset import SyntheticFaceVideos
from .folder import synthetic_video_pairs
from .motion import MOTION_RANGES, sample_motion
from .render import (
    BACKGROUND_PATTERNS,
    GENERATOR_VERSION,
    HAIR_STYLES,
    KEYPOINT_NAMES,
    MAX_SIZE,
    MIN_SIZE,
    MOTION_FACTORS,
    NEUTRAL_PARAMS,
    FaceIdentity,
    render_frame,
    render_video,
    sample_clip_motion,
    video_seed,
)
from .writer import clip_name, make_synthetic_dataset, read_manifest, synthetic_dataset_ready

__all__ = [
    "BACKGROUND_PATTERNS",
    "GENERATOR_VERSION",
    "HAIR_STYLES",
    "KEYPOINT_NAMES",
    "MAX_SIZE",
    "MIN_SIZE",
    "MOTION_FACTORS",
    "MOTION_RANGES",
    "NEUTRAL_PARAMS",
    "FaceIdentity",
    "SyntheticFaceVideos",
    "clip_name",
    "make_synthetic_dataset",
    "read_manifest",
    "render_frame",
    "render_video",
    "sample_clip_motion",
    "synthetic_video_pairs",
    "sample_motion",
    "synthetic_dataset_ready",
    "video_seed",
]
