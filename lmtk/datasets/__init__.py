"""Datasets and paired augmentations: video-pair training data, frame access, synthetic data.

Importing this package registers the datasets in :data:`lmtk.registry.datasets` and the paired
transforms in mmcv's ``TRANSFORMS``.
"""

from . import (  # noqa: F401
    resumable_sampler,
    synthetic,  # noqa: F401
    transforms,
    video_pair,
    video_reader,
)
from .resumable_sampler import Draw, ResumableInfiniteSampler, seeded
from .transforms import (
    PairedColorJitter,
    PairedRandomCrop,
    PairedRandomFlip,
    PairedResize,
    frame_to_tensor,
    resize_image,
)
from .video_pair import NoReadableVideoError, VideoPairDataset, video_identity
from .video_reader import (
    FRAME_EXTENSIONS,
    VIDEO_EXTENSIONS,
    DecordVideoReader,
    FrameFolderReader,
    VideoReader,
    find_videos,
    open_video,
    split_folder,
)

__all__ = [
    "FRAME_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DecordVideoReader",
    "Draw",
    "FrameFolderReader",
    "NoReadableVideoError",
    "PairedColorJitter",
    "PairedRandomCrop",
    "PairedRandomFlip",
    "PairedResize",
    "ResumableInfiniteSampler",
    "VideoPairDataset",
    "VideoReader",
    "find_videos",
    "frame_to_tensor",
    "open_video",
    "resize_image",
    "seeded",
    "video_identity",
    "split_folder",
]
