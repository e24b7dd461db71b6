"""Training pairs for latent image animation: a source and a driving frame from the same video.

Reads a flat folder of videos or the FOMM ``vox-png`` layout (``data_root/train/``,
``data_root/test/``), where each video is a video file (mp4, mov, webm, avi, mkv; read with decord) or a
folder of frame images. Each item decodes only its two frames, passes them through a numpy pipeline of
paired transforms (:mod:`lmtk.datasets.transforms`), resizes them to the model size and returns tensors
in [-1, 1].

Example:
    >>> dataset = VideoPairDataset("data/vox", split="train", size=256,
    ...                            pipeline=[dict(type="PairedRandomFlip", prob=0.5)])  # doctest: +SKIP
    >>> item = dataset[0]  # doctest: +SKIP
    >>> item["source"].shape, item["driving"].shape, item["video"], item["frame_indices"]  # doctest: +SKIP
    (torch.Size([3, 256, 256]), torch.Size([3, 256, 256]), 'id10001#abc#001.mp4', (12, 87))
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.logging import print_log

from lmtk.registry import datasets

from .frame_cache import FrameCache
from .resumable_sampler import Draw, seeded
from .transforms import frame_to_tensor, resize_image, to_size
from .video_reader import (
    FRAME_EXTENSIONS,
    VIDEO_EXTENSIONS,
    find_videos,
    open_video,
)

__all__ = ["NoReadableVideoError", "VideoPairDataset", "video_identity"]

# Decoders inherited by a forked DataLoader worker belong to the parent's decoding state; closing them
# in the child can hang, so the child parks them here and never touches them again.
_INHERITED_READERS: list[Any] = []

# Per-video warnings logged while scanning; the rest are only counted in the summary line.
_MAX_SKIP_WARNINGS = 10


def video_identity(name: str) -> str:
    """The identity of a VoxCeleb-style video name: the part before the first ``#``.

    >>> video_identity("id10001#7w0IBEWc9Qw#000993#001143.mp4")
    'id10001'
    >>> video_identity("driving1.mp4")
    'driving1'
    """
    identity, sep, _ = name.partition("#")
    return identity if sep else Path(name).stem


def _count_frames(path: Path) -> int:
    # Opened and dropped at once: the parent of forked DataLoader workers should hold no open decoder.
    return len(open_video(path))


class NoReadableVideoError(RuntimeError):
    """Every video of a dataset failed to read while training: there is no pair left to draw."""


@datasets.register("lmtk.VideoPairDataset.v1")
class VideoPairDataset(torch.utils.data.Dataset):
    """Source/driving frame pairs from the same video.

    Args:
        data_root: dataset folder. ``data_root/<split>`` is used when it exists, else ``data_root``.
        split: ``"train"``, ``"test"`` or None (always ``data_root`` itself).
        size: output size, int or ``(H, W)``; None keeps the stored size (then all videos must share it).
        pipeline: paired numpy transforms (instances or config dicts such as
            ``dict(type="PairedRandomFlip", prob=0.5)``), applied before the resize to ``size``. Put a
            ``PairedResize`` first to augment at the model size, which is cheaper.
        repeats: passes over the items per epoch; ``len(dataset) == repeats * num_items``.
        group_by_identity: one item per identity (the name before the first ``#``, VoxCeleb style)
            instead of one per video; an item then picks one of the identity's videos at random, so that
            identities with many clips are not over-sampled.
        scan: check at construction that every video opens and has at least 2 frames, and drop the
            others (listed in :attr:`skipped`). With False, bad videos are found while reading.
        reader_cache_size: open readers kept per process (least recently used are closed).
        frame_cache_mb: keep whole decoded videos in memory, up to this many megabytes per process
            (least recently used dropped; a video larger than that is never kept). 0 (default) decodes
            the two frames of every item. Pays for small datasets that are read many times: the 64 px
            synthetic set (36 MB) then decodes each clip once instead of at every draw (8.9 ms an item).

    Each item is a dict: ``source``, ``driving``: ``(3, H, W)`` float32 RGB in [-1, 1]; ``video``: the
    file or folder name; ``frame_indices``: ``(source_index, driving_index)``, two distinct frames.

    An index may be a :class:`~.resumable_sampler.Draw` (what ``ResumableInfiniteSampler`` yields):
    the item's random choices (video of an identity, frames, augmentations) are then made under the
    draw's seed, so they depend on the draw alone. With a plain int they come from ``np.random``; with a
    plain ``DataLoader`` pass a ``worker_init_fn`` that seeds numpy per worker (mmengine's runner does).
    """

    def __init__(
        self,
        data_root: str | os.PathLike,
        split: str | None = "train",
        size: int | Sequence[int] | None = 256,
        pipeline: Sequence[dict | Callable] | Callable | None = None,
        repeats: int = 1,
        group_by_identity: bool = False,
        scan: bool = True,
        reader_cache_size: int = 8,
        frame_cache_mb: float = 0,
    ) -> None:
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        if frame_cache_mb < 0:
            raise ValueError(f"frame_cache_mb must be >= 0 (0 switches the cache off), got {frame_cache_mb}")
        self.data_root = Path(data_root)
        self.split = split
        self.root = self._resolve_root(self.data_root, split)
        self.size = None if size is None else to_size(size)
        self.pipeline = self._build_pipeline(pipeline)
        self.repeats = int(repeats)
        self.group_by_identity = group_by_identity
        self.reader_cache_size = int(reader_cache_size)
        self.frame_cache_bytes = int(frame_cache_mb * 2**20)
        self.skipped: list[tuple[str, str]] = []

        videos = find_videos(self.root)
        if not videos:
            others = sorted(p.name for p in self.data_root.iterdir() if p.is_dir()) if split else []
            hint = (
                f"; it has no {split}/ folder but {', '.join(f'{name}/' for name in others)} (tools/prepare_dataset.py "
                f"puts whole videos in train/ or test/: --split 1.0 puts all in train/)"
                if others and not (self.data_root / split).is_dir()
                else ""
            )
            raise ValueError(
                f"No videos found in {self.root}: expected video files ({', '.join(VIDEO_EXTENSIONS)}) "
                f"or folders of frame images ({', '.join(FRAME_EXTENSIONS)}){hint}"
            )
        self.videos = self._scan(videos) if scan else videos
        self.names = [path.name for path in self.videos]
        self._items = self._group(self.names) if group_by_identity else [[i] for i in range(len(self.videos))]
        self._bad: set[int] = set()
        self._readers: OrderedDict[int, Any] = OrderedDict()
        self._readers_pid: int | None = None
        self._decoded = FrameCache(self.frame_cache_bytes)

    @staticmethod
    def _resolve_root(data_root: Path, split: str | None) -> Path:
        if not data_root.is_dir():
            raise FileNotFoundError(
                f"Dataset folder not found: {data_root} (point the config at your data, e.g. "
                "--cfg-options train_dataloader.dataset.data_root=DIR)"
            )
        if split is not None and (data_root / split).is_dir():
            return data_root / split
        return data_root

    @staticmethod
    def _build_pipeline(pipeline: Any) -> Callable | None:
        if pipeline is None or callable(pipeline):
            return pipeline
        if isinstance(pipeline, Mapping):
            pipeline = [pipeline]
        return Compose(list(pipeline)) if pipeline else None

    def _scan(self, videos: list[Path]) -> list[Path]:
        good = []
        for path in videos:
            try:
                num_frames = _count_frames(path)
                reason = None if num_frames >= 2 else f"{num_frames} frame(s), a pair needs at least 2"
            except Exception as error:  # any unreadable file is skipped, never fatal
                reason = f"unreadable: {error}"
            if reason is None:
                good.append(path)
            else:
                self._skip(path, reason, warn=len(self.skipped) < _MAX_SKIP_WARNINGS)
        if self.skipped:
            print_log(
                f"VideoPairDataset: skipped {len(self.skipped)} of {len(videos)} videos in {self.root} "
                "(see dataset.skipped)",
                logger="current",
                level=logging.WARNING,
            )
        if not good:
            path, reason = self.skipped[0]
            raise ValueError(
                f"No usable videos in {self.root}: all {len(videos)} are unreadable or shorter than "
                f"2 frames (first: {path}: {reason})"
            )
        return good

    def _skip(self, path: Path, reason: str, warn: bool = True) -> None:
        self.skipped.append((str(path), reason))
        if warn:
            print_log(f"VideoPairDataset: skipping {path}: {reason}", logger="current", level=logging.WARNING)

    @staticmethod
    def _group(names: list[str]) -> list[list[int]]:
        groups: dict[str, list[int]] = {}
        for index, name in enumerate(names):
            groups.setdefault(video_identity(name), []).append(index)
        return [groups[identity] for identity in sorted(groups)]

    @property
    def num_items(self) -> int:
        """Items per pass: videos, or identities with ``group_by_identity``."""
        return len(self._items)

    @property
    def identities(self) -> list[str]:
        """The sorted identities of the usable videos."""
        return sorted({video_identity(name) for name in self.names})

    @property
    def metainfo(self) -> dict:
        return dict(root=str(self.root), num_videos=len(self.videos), num_identities=len(self.identities))

    def __len__(self) -> int:
        return self.repeats * self.num_items

    def __getitem__(self, index: int | Draw) -> dict:
        if isinstance(index, Draw):  # from ResumableInfiniteSampler: the draw's own random choices
            with seeded(index.seed):
                return self._item(index.index)
        return self._item(index)

    def _item(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        videos = self._items[index % self.num_items]
        video = videos[np.random.randint(len(videos))] if len(videos) > 1 else videos[0]
        for _ in range(len(self.videos)):
            if video in self._bad:
                video = (video + 1) % len(self.videos)
                continue
            try:
                frames, indices = self._read_pair(video)
            except Exception as error:  # a bad video must not end the epoch: use the next one
                self._mark_bad(video, f"read failed: {error}")
                video = (video + 1) % len(self.videos)
                continue
            return self._finish(video, frames, indices)
        path, reason = self.skipped[-1]
        raise NoReadableVideoError(
            f"Every video in {self.root} failed to read in this process (the last, {Path(path).name}: "
            f"{reason}); re-encode or remove the damaged files"
        )

    def _read_pair(self, video: int) -> tuple[np.ndarray, tuple[int, int]]:
        decoded = self._decoded_video(video) if self.frame_cache_bytes else None
        reader = self._reader(video) if decoded is None else None
        num_frames = len(reader) if decoded is None else len(decoded)
        if num_frames < 2:
            raise ValueError(f"{num_frames} frame(s), a pair needs at least 2")
        # Two distinct frames in random order, drawn in O(1) (np.random.choice would permute them all).
        source = int(np.random.randint(num_frames))
        driving = int(np.random.randint(num_frames - 1))
        driving += driving >= source
        frames = reader.get_frames([source, driving]) if decoded is None else decoded[[source, driving]]
        return frames, (source, driving)

    def _decoded_video(self, video: int) -> np.ndarray | None:
        """Every frame of ``video`` from the frame cache (decoded on first use), or None if it is too big."""
        frames = self._decoded.get(video)
        if frames is not None:
            return frames
        reader = self._reader(video)
        height, width = reader.size
        if not self._decoded.fits(len(reader) * height * width * 3):
            return None
        frames = reader.get_frames(range(len(reader)))
        self._decoded.put(video, frames)
        self._readers.pop(video, None)  # the frames are all here now
        return frames

    def _finish(self, video: int, frames: np.ndarray, indices: tuple[int, int]) -> dict:
        results = dict(source=frames[0], driving=frames[1], video=self.names[video], frame_indices=indices)
        if self.pipeline is not None:
            results = self.pipeline(results)
            if results is None:
                raise RuntimeError(f"The pipeline dropped the pair {indices} of {self.names[video]}")
        source, driving = results["source"], results["driving"]
        if self.size is not None:
            source, driving = resize_image(source, self.size), resize_image(driving, self.size)
        return dict(
            source=frame_to_tensor(source),
            driving=frame_to_tensor(driving),
            video=self.names[video],
            frame_indices=indices,
        )

    def _mark_bad(self, video: int, reason: str) -> None:
        self._bad.add(video)
        self._readers.pop(video, None)
        self._decoded.pop(video)
        self._skip(self.videos[video], reason)

    def _reader(self, video: int) -> Any:
        if self._readers_pid != os.getpid():
            if self._readers:
                _INHERITED_READERS.append(self._readers)
            self._readers = OrderedDict()
            self._readers_pid = os.getpid()
        reader = self._readers.get(video)
        if reader is not None:
            self._readers.move_to_end(video)
            return reader
        reader = open_video(self.videos[video])
        if self.reader_cache_size > 0:
            self._readers[video] = reader
            while len(self._readers) > self.reader_cache_size:
                self._readers.popitem(last=False)
        return reader

    def __getstate__(self) -> dict:
        # Open decoders do not pickle (spawned workers, deepcopy); each process reopens its own.
        state = self.__dict__.copy()
        state["_readers"] = OrderedDict()
        state["_readers_pid"] = None
        state["_decoded"] = FrameCache(self.frame_cache_bytes)  # each process fills its own
        return state

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, videos={len(self.videos)}, "
            f"identities={len(self.identities)}, items={self.num_items}, repeats={self.repeats}, "
            f"size={self.size}, skipped={len(self.skipped)})"
        )
