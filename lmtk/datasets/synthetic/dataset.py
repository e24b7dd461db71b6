"""An in-memory dataset of synthetic talking-face clips, rendered on the fly: no files, no decoding.

Video ``i`` is the same clip as ``train/id<i>#00`` of ``make_synthetic_dataset(seed=seed)``, so a
model trained in memory can be evaluated on the written test split (or the other way round).

Example:
    >>> dataset = SyntheticFaceVideos(num_videos=2, num_frames=4, size=32)
    >>> sample = dataset[0]
    >>> tuple(sample["source"].shape), sample["source"].dtype, sample["video"]
    ((3, 32, 32), torch.float32, 'id0000#00')
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lmtk.functional.image_range import uint8_to_float
from lmtk.registry import datasets

from .render import KEYPOINT_NAMES, render_video, video_seed
from .writer import clip_name

__all__ = ["SyntheticFaceVideos"]


@datasets.register("lmtk.SyntheticFaceVideos.v1")
class SyntheticFaceVideos(Dataset):
    """Pairs of frames (source, driving) from the same procedurally rendered clip.

    Args:
        num_videos: number of distinct clips (one identity each).
        num_frames: frames per clip (at least 2, so source and driving differ).
        size: frame side in pixels, 32 to 256.
        seed: dataset seed, as in :func:`make_synthetic_dataset`.
        repeats: the dataset length is ``num_videos * repeats``; index ``i`` reads video
            ``i % num_videos`` with its own fixed pair of frames.
        fps: frame rate the motion is sampled at.
        cache_size: rendered clips kept in memory (least recently used are dropped).

    Each item is a dict:
        ``source``, ``driving``: (3, H, W) float32 in [-1, 1];
        ``video``: clip name; ``frame_indices``: (source index, driving index);
        ``source_keypoints``, ``driving_keypoints``: (K, 2) float32 pixels, :data:`KEYPOINT_NAMES` order.
    """

    keypoint_names = KEYPOINT_NAMES

    def __init__(
        self,
        num_videos: int = 16,
        num_frames: int = 16,
        size: int = 64,
        seed: int = 0,
        repeats: int = 1,
        fps: float = 25.0,
        cache_size: int = 8,
    ) -> None:
        if num_videos < 1 or repeats < 1:
            raise ValueError(f"num_videos and repeats must be positive, got {num_videos} and {repeats}")
        if num_frames < 2:
            raise ValueError(f"num_frames must be at least 2 to draw two different frames, got {num_frames}")
        self.num_videos, self.num_frames, self.size = num_videos, num_frames, size
        self.seed, self.repeats, self.fps = seed, repeats, fps
        self.cache_size = max(1, cache_size)
        self.videos = [clip_name(index, 0) for index in range(num_videos)]
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        return self.num_videos * self.repeats

    def clip(self, video: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames (T, H, W, 3) uint8 and keypoints (T, K, 2) of video ``video``, rendered once then cached."""
        if video in self._cache:
            self._cache.move_to_end(video)
            return self._cache[video]
        frames, keypoints, _ = render_video(
            video_seed(self.seed, "train", video), self.num_frames, self.size, self.fps
        )
        self._cache[video] = (frames, keypoints)
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return frames, keypoints

    def frame_pair(self, index: int) -> tuple[int, int]:
        """The (source, driving) frames of item ``index``: fixed per (seed, index), never equal."""
        rng = np.random.default_rng([self.seed, index])
        source, driving = rng.choice(self.num_frames, size=2, replace=False)
        return int(source), int(driving)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index %= len(self)
        video = index % self.num_videos
        frames, keypoints = self.clip(video)
        source, driving = self.frame_pair(index)
        return {
            "source": _to_tensor(frames[source]),
            "driving": _to_tensor(frames[driving]),
            "video": self.videos[video],
            "frame_indices": (source, driving),
            "source_keypoints": torch.from_numpy(keypoints[source].copy()),
            "driving_keypoints": torch.from_numpy(keypoints[driving].copy()),
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_videos={self.num_videos}, num_frames={self.num_frames}, "
            f"size={self.size}, seed={self.seed}, repeats={self.repeats})"
        )


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [-1, 1]."""
    return uint8_to_float(torch.from_numpy(image).permute(2, 0, 1))
