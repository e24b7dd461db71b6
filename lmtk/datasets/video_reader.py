"""Random access to the frames of one video: a video file (decord), a folder of frame images, or frames
already in memory (:class:`ArrayVideo`).

The readers share one small interface, :class:`VideoReader`: ``len(reader)``, ``reader.fps``,
``reader.size`` (H, W) and ``reader.get_frames(indices)``, which decodes only the requested frames and
returns them as ``(N, H, W, 3)`` uint8 RGB. :func:`open_video` picks the reader from the path, and
:func:`find_videos` lists the videos of a dataset folder (video files and frame folders, not single
images).

Example:
    >>> reader = open_video("data/vox/train/id10001#abc#001.mp4")  # doctest: +SKIP
    >>> frames = reader.get_frames([0, 10])  # doctest: +SKIP
    >>> frames.shape, frames.dtype  # doctest: +SKIP
    ((2, 256, 256, 3), dtype('uint8'))
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ..functional.checks import check_shape

__all__ = [
    "ArrayVideo",
    "FRAME_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DecordVideoReader",
    "FrameFolderReader",
    "UnreadableVideoError",
    "VideoReader",
    "find_videos",
    "is_frame_folder",
    "is_video_file",
    "list_frames",
    "open_video",
]

VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".avi", ".mkv")
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg")

# Frame folders and arrays carry no frame rate; VoxCeleb and the FOMM "vox-png" frames are 25 fps.
DEFAULT_FOLDER_FPS = 25.0


class UnreadableVideoError(ValueError):
    """A video (file or frame folder) that exists but cannot be decoded: truncated, corrupt, empty."""


@runtime_checkable
class VideoReader(Protocol):
    """What every reader offers: frame count, frame rate, frame size and random access."""

    path: Path

    def __len__(self) -> int: ...

    @property
    def fps(self) -> float: ...

    @property
    def size(self) -> tuple[int, int]: ...

    def get_frames(self, indices: Sequence[int]) -> np.ndarray: ...


def is_video_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file with one of :data:`VIDEO_EXTENSIONS` (case-insensitive)."""
    path = Path(path)
    return path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()


def _natural_key(name: str) -> list[int | str]:
    # "frame_10.png" must come after "frame_9.png" when the numbers are not zero-padded.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """The image files of a frame folder, in natural order (``2.png`` before ``10.png``)."""
    names = [
        entry.name
        for entry in os.scandir(folder)
        if entry.is_file() and os.path.splitext(entry.name)[1].lower() in FRAME_EXTENSIONS
    ]
    return [Path(folder) / name for name in sorted(names, key=_natural_key)]


def is_frame_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory holding at least one frame image (png or jpg)."""
    if not os.path.isdir(path):
        return False
    with os.scandir(path) as entries:
        return any(
            entry.is_file() and os.path.splitext(entry.name)[1].lower() in FRAME_EXTENSIONS
            for entry in entries
        )


def find_videos(root: str | os.PathLike) -> list[Path]:
    """The videos directly inside ``root``, sorted by name: video files and frame folders.

    Single images and other files are not videos and are left out, so a folder of demo clips next to
    their source portraits lists only the clips; so are hidden names (``.<clip>.tmp123``, the temporary
    file of an interrupted write, say).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Video folder not found: {root}")
    return [
        path
        for path in sorted(root.iterdir())
        if not path.name.startswith(".") and (is_video_file(path) or is_frame_folder(path))
    ]


def split_folder(root: str | os.PathLike, split: str) -> Path:
    """Where a split's videos are: ``root/split``, or ``root`` itself when it holds videos directly.

    Raises:
        FileNotFoundError: ``root`` is missing, or has neither that split nor videos of its own; the
            message lists the folders it has, so a mistyped split is one line.
    """
    root = Path(root)
    if (root / split).is_dir():
        return root / split
    if not root.is_dir():
        raise FileNotFoundError(f"data root not found: {root}")
    if find_videos(root):
        return root
    folders = sorted(path.name for path in root.iterdir() if path.is_dir())
    listing = f"its folders: {', '.join(folders)}" if folders else "it has no folders"
    raise FileNotFoundError(f"{root} has no split '{split}' and no videos of its own ({listing})")


def _check_indices(indices: Sequence[int], length: int, path: Path) -> list[int]:
    indices = [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < length]
    if bad:
        raise IndexError(f"Frame indices {bad} out of range for {path} ({length} frames)")
    return indices


def _unreadable(path: Path, error: Exception | str, what: str = "") -> UnreadableVideoError:
    """decord's message with its source location cut (``[12:00:00] /src/video_reader.cc:486: Error: ...``)."""
    reason = re.sub(r"^.*?\.cc:\d+:\s*(Error:\s*)?", "", " ".join(str(error).split())) or type(error).__name__
    part = f" ({what})" if what else ""
    return UnreadableVideoError(
        f"cannot read video {path}{part}: the file is truncated, corrupt or not a video (decoder: {reason})"
    )


def _ffmpeg_open_error(path: Path) -> str | None:
    """FFmpeg's reason for refusing to open ``path`` (e.g. "Invalid data found when processing input"),
    read through PyAV: decord's own exception only says "Error reading <path>"."""
    try:
        import av
    except ImportError:
        return None
    try:
        av.open(str(path)).close()
    except Exception as error:
        return getattr(error, "strerror", None) or None
    return None


# a log line of decord's C++ core: "[17:26:09] /src/video/video_reader.cc:83: ERROR opening: ..."
_NATIVE_LOG_LINE = re.compile(rb"^\[[\d:]+\] \S+\.cc:\d+: ")
_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _without_native_log_lines() -> Iterator[None]:
    """Keep decord's C++ log lines off stderr within the block.

    decord prints the error of a file it cannot open on the process's stderr (file descriptor 2, out of
    reach of its logging settings) before raising it, so the user saw it beside lmtk's own error line for
    the same file. Descriptor 2 goes to a temporary file within the block; what else arrived there (from
    another thread, say) is written out afterwards: late, not lost.
    """
    with _STDERR_LOCK, tempfile.TemporaryFile() as capture:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no stderr to guard
            yield
            return
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [
                line for line in capture.read().splitlines(keepends=True) if not _NATIVE_LOG_LINE.match(line)
            ]
            if kept:
                with open(2, "wb", closefd=False) as stderr:  # writes all of it, unlike one os.write
                    stderr.write(b"".join(kept))


class DecordVideoReader:
    """A video file read with decord; only the requested frames are decoded.

    Args:
        path: the video file.
        num_threads: decoder threads; 1 by default because DataLoader workers already run in parallel.
    """

    def __init__(self, path: str | os.PathLike, num_threads: int = 1) -> None:
        import decord  # imported here so that frame folders work where decord is missing

        # FFmpeg's and decord's own log lines would reach stderr beside lmtk's error for the same file
        decord.logging.set_level(decord.logging.QUIET)
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"Video file not found: {self.path}")
        try:
            with _without_native_log_lines():
                self._reader = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=num_threads)
        except Exception as error:  # decord raises a bare DECORDError/RuntimeError for corrupt files
            raise _unreadable(self.path, _ffmpeg_open_error(self.path) or error) from error
        self._size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self._reader)

    @property
    def fps(self) -> float:
        return float(self._reader.get_avg_fps())

    @property
    def size(self) -> tuple[int, int]:
        if self._size is None:
            # decord exposes no frame size without decoding; one frame, once, is cheap.
            self._size = tuple(self.get_frames([0]).shape[1:3])
        return self._size

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Frames ``indices`` as ``(N, H, W, 3)`` uint8 RGB, in the order asked."""
        indices = _check_indices(indices, len(self), self.path)
        if not indices:
            height, width = self.size
            return np.zeros((0, height, width, 3), np.uint8)
        # Decoding in increasing order never seeks backwards; reorder afterwards.
        unique = sorted(set(indices))
        try:
            frames = self._reader.get_batch(unique)
        except Exception as error:  # a file cut short: its index lists frames that are not there
            raise _unreadable(self.path, error, f"frames {unique[0]}-{unique[-1]}") from error
        frames = frames.asnumpy() if hasattr(frames, "asnumpy") else np.asarray(frames)  # any decord bridge
        if self._size is None:
            self._size = tuple(frames.shape[1:3])
        position = {index: k for k, index in enumerate(unique)}
        return frames[[position[i] for i in indices]]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, frames={len(self)})"


def _read_image(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


class _ListedFrames:
    """A reader whose frames are the items of ``self.frames``, at the frame rate it was given."""

    path: Path
    frames: Sequence
    _fps: float

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def fps(self) -> float:
        return self._fps

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, frames={len(self)})"


class FrameFolderReader(_ListedFrames):
    """A video stored as a folder of frame images (the FOMM "vox-png" layout), in natural name order.

    Args:
        path: the folder.
        fps: the frame rate to report, since frame folders do not store one.
    """

    def __init__(self, path: str | os.PathLike, fps: float = DEFAULT_FOLDER_FPS) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"Frame folder not found: {self.path}")
        self.frames = list_frames(self.path)
        if not self.frames:
            raise UnreadableVideoError(f"No frame images ({', '.join(FRAME_EXTENSIONS)}) in {self.path}")
        self._fps = float(fps)

    @property
    def size(self) -> tuple[int, int]:
        with Image.open(self.frames[0]) as image:  # reads the header only
            width, height = image.size
        return height, width

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Frames ``indices`` as ``(N, H, W, 3)`` uint8 RGB; only those files are read."""
        indices = _check_indices(indices, len(self), self.path)
        if not indices:
            height, width = self.size
            return np.zeros((0, height, width, 3), np.uint8)
        images = []
        for i in indices:
            try:
                images.append(_read_image(self.frames[i]))
            except (OSError, ValueError) as error:
                raise UnreadableVideoError(f"Cannot read frame {self.frames[i]}: {error}") from error
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise UnreadableVideoError(f"Frames of {self.path} differ in size: {sorted(shapes)}")
        return np.stack(images)


class ArrayVideo(_ListedFrames):
    """Frames already in memory, an ``(N, H, W, 3)`` uint8 array, behind the reader interface.

    Args:
        frames: the frames (kept as they are, not copied).
        fps: the frame rate to report.
        name: what the frames are called in the error for an array of another shape or dtype.

    Example:
        >>> video = ArrayVideo(np.zeros((4, 8, 6, 3), np.uint8))
        >>> len(video), video.size, video.get_frames([3, 0]).shape
        (4, (8, 6), (2, 8, 6, 3))
    """

    def __init__(self, frames: np.ndarray, fps: float = DEFAULT_FOLDER_FPS, name: str = "frames") -> None:
        frames = np.asarray(frames)
        check_shape(frames, ["N", "H", "W", 3], name, dtype=np.uint8)
        self.frames = frames
        self.path = Path("<array>")
        self._fps = float(fps)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.frames.shape[1:3])

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Frames ``indices`` as ``(N, H, W, 3)`` uint8, in the order asked."""
        return self.frames[list(indices)]


def open_video(
    path: str | os.PathLike, *, num_threads: int = 1, folder_fps: float = DEFAULT_FOLDER_FPS
) -> DecordVideoReader | FrameFolderReader:
    """Open a video file or a frame folder for random frame access.

    Args:
        path: a video file (one of :data:`VIDEO_EXTENSIONS`) or a folder of frame images.
        num_threads: decoder threads for video files.
        folder_fps: the frame rate reported for frame folders.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is neither a video file nor a frame folder.
        UnreadableVideoError: ``path`` cannot be decoded (a ``ValueError`` too).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Video not found: {path}")
    if path.is_dir():
        return FrameFolderReader(path, fps=folder_fps)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise ValueError(
            f"Not a video: {path}; expected a video file ({', '.join(VIDEO_EXTENSIONS)}) "
            f"or a folder of frames ({', '.join(FRAME_EXTENSIONS)})"
        )
    return DecordVideoReader(path, num_threads=num_threads)
