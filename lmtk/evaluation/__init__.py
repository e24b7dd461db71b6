"""Evaluation: metrics, keypoint/identity extractors, the paper's protocols and direction analysis.

Importing this package registers the metrics (``lmtk.L1.v1``, ``lmtk.LPIPS.v1``, ``lmtk.AKD.v1``,
``lmtk.MKR.v1``, ``lmtk.AED.v1``, ``lmtk.VideoFID.v1``) and extractors (``lmtk.Dlib68.v1``,
``lmtk.SyntheticKeypoints.v1``, ``lmtk.DlibFace.v1``). Heavy optional dependencies (dlib, lpips,
torchvision models) are imported only when a component that needs them is built.
"""

from . import extractors, metrics
from .direction_analysis import (
    best_matching_factors,
    collect_magnitudes,
    correlation_matrix,
    orthogonality_error,
)
from .extractors import (
    Dlib68,
    DlibFace,
    IdentityEmbedding,
    Keypoints,
    SyntheticKeypoints,
    load_synthetic_keypoints,
)
from .metrics import AED, AKD, L1, LPIPS, MKR, FrameMetric, VideoFID
from .protocols import PROTOCOLS, EvaluationResult, evaluate_reconstruction, evaluate_transfer, transfer_pairs
from .reconstruction import iter_video_frames, reconstruct_video

__all__ = [
    "AED",
    "AKD",
    "L1",
    "LPIPS",
    "MKR",
    "PROTOCOLS",
    "Dlib68",
    "DlibFace",
    "EvaluationResult",
    "FrameMetric",
    "IdentityEmbedding",
    "Keypoints",
    "SyntheticKeypoints",
    "VideoFID",
    "best_matching_factors",
    "collect_magnitudes",
    "correlation_matrix",
    "evaluate_reconstruction",
    "evaluate_transfer",
    "extractors",
    "iter_video_frames",
    "load_synthetic_keypoints",
    "metrics",
    "orthogonality_error",
    "reconstruct_video",
    "transfer_pairs",
]
