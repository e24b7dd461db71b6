"""Evaluation metrics as mmengine ``BaseMetric`` subclasses, each backed by a pure function.

Registered in :data:`lmtk.registry.metrics`: ``lmtk.L1.v1``, ``lmtk.LPIPS.v1``, ``lmtk.AKD.v1``,
``lmtk.MKR.v1``, ``lmtk.AED.v1``, ``lmtk.VideoFID.v1``. See :mod:`.base` for the data-sample format.
"""

from .aed import AED, identity_distance
from .akd import AKD, average_keypoint_distance, keypoint_distances
from .base import FrameMetric, paired_frames, to_frames, to_uint8_frames
from .fid import VideoFID, feature_statistics, frechet_distance
from .fid_features import FEATURE_NETWORKS, InceptionFeatures, R3D18Features, build_feature_network
from .keypoint_base import KeypointMetric
from .l1 import L1, l1_distance
from .lpips import LPIPS, alexnet_weights_path, build_lpips_network, lpips_distance
from .mkr import MKR, count_missing, missing_keypoint_rate

__all__ = [
    "AED",
    "AKD",
    "FEATURE_NETWORKS",
    "L1",
    "LPIPS",
    "MKR",
    "FrameMetric",
    "InceptionFeatures",
    "KeypointMetric",
    "R3D18Features",
    "VideoFID",
    "alexnet_weights_path",
    "average_keypoint_distance",
    "build_feature_network",
    "build_lpips_network",
    "count_missing",
    "feature_statistics",
    "frechet_distance",
    "identity_distance",
    "keypoint_distances",
    "l1_distance",
    "lpips_distance",
    "missing_keypoint_rate",
    "paired_frames",
    "to_frames",
    "to_uint8_frames",
]
