"""Follow one face through a video: link detections, find shot cuts, smooth, and fix a crop per clip.

The detector runs on every ``detect_every``-th frame (the key frames). A face observation is
``(cx, cy, size)`` in source pixels (see :class:`~lmtk.preprocessing.face_detection.Face`). The steps,
each a pure function on arrays so they can be tested without a detector:

1. :func:`link_detections` chains the observations of successive key frames into segments. A segment
   ends where the face is missing for more than ``max_gap`` frames, or where it jumps by more than
   ``max_jump`` face sizes or changes size by more than that fraction between two key frames; a jump
   is how a shot cut shows in the face track.
2. :func:`interpolate_segment` fills the frames between key frames linearly and
   :func:`smooth_track` removes the detector's jitter (Gaussian, ``sigma`` frames).
3. :func:`split_by_drift` cuts a segment again where the face has wandered too far for one fixed crop,
   since a training clip keeps one box (a still crop of a moving face, as in VoxCeleb) so that the
   camera seems still and only the head moves.

:func:`track_faces` runs all three; :func:`face_box_for_video` gives one box for a whole clip (the
driving video of an animation), so its crop does not jitter.

Example:
    >>> frames = [0, 5, 10, 15]
    >>> faces = [[(100, 100, 50)], [(101, 99, 50)], [(300, 100, 50)], [(301, 101, 51)]]
    >>> [(track.start, track.end) for track in track_faces(frames, faces, num_frames=16)]
    [(0, 6), (10, 16)]
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmtk.datasets.video_reader import ArrayVideo, VideoReader, open_video

from ..functional.checks import check_shape
from .crop import Box

__all__ = [
    "FaceTrack",
    "face_box_for_video",
    "interpolate_segment",
    "key_frames",
    "link_detections",
    "scan_video",
    "smooth_track",
    "split_by_drift",
    "track_faces",
]


@dataclass(frozen=True)
class FaceTrack:
    """One face followed over consecutive frames ``[start, end)``.

    Attributes:
        start: first frame index.
        centers: ``(T, 2)`` smoothed face centres ``(x, y)``, one per frame.
        sizes: ``(T,)`` smoothed face sizes.
    """

    start: int
    centers: np.ndarray
    sizes: np.ndarray

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def end(self) -> int:
        """One past the last frame."""
        return self.start + len(self)

    def box(self, margin: float = 0.6, shift: float = 0.1) -> Box:
        """One square crop box for the whole track (see :func:`~lmtk.preprocessing.crop.framing_box`).

        Centred on the middle of the range the face centre covers, so the face stays as far inside as
        it can; the side follows the median face size.
        """
        size = float(np.median(self.sizes))
        low, high = self.centers.min(0), self.centers.max(0)
        cx, cy = (low + high) / 2
        return Box.from_center(cx, cy + shift * size, (1 + 2 * margin) * size)

    def __getitem__(self, item: slice) -> FaceTrack:
        """The part of the track in ``item`` (a slice of positions, step 1)."""
        start, stop, step = item.indices(len(self))
        if step != 1:
            raise ValueError("a track slice must have step 1")
        return FaceTrack(self.start + start, self.centers[start:stop], self.sizes[start:stop])


def key_frames(num_frames: int, detect_every: int) -> list[int]:
    """Every ``detect_every``-th frame, and the last one, so a track can reach the end of the video."""
    if detect_every < 1:
        raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    frames = list(range(0, num_frames, detect_every))
    if frames and frames[-1] != num_frames - 1:
        frames.append(num_frames - 1)
    return frames


def _observations(faces: Iterable[Any]) -> np.ndarray:
    """``(n, 3)`` ``[cx, cy, size]`` from Face objects or ``(cx, cy, size)`` triples."""
    rows = [
        (face.center[0], face.center[1], face.size) if hasattr(face, "center") else tuple(face)
        for face in faces
    ]
    return np.asarray(rows, np.float64).reshape(-1, 3)


def link_detections(
    frames: Sequence[int],
    faces: Sequence[Iterable[Any]],
    max_gap: int = 10,
    max_jump: float = 0.5,
) -> list[np.ndarray]:
    """Chain the faces found on key frames into segments of one face each.

    Args:
        frames: the key frame indices, increasing.
        faces: for each key frame, its faces (Face objects or ``(cx, cy, size)``), possibly none.
        max_gap: the most frames without a face inside one segment.
        max_jump: the largest move (in face sizes) and relative size change between two successive
            observations of one segment; more is a shot cut.

    Returns:
        segments, each ``(K, 4)`` float64 rows ``[frame, cx, cy, size]``. A segment starts with the
        largest face; later key frames add the face nearest to the last one.
    """
    if len(frames) != len(faces):
        raise ValueError(f"{len(frames)} frames but {len(faces)} face lists")
    segments: list[list[np.ndarray]] = []
    current: list[np.ndarray] = []
    for frame, found in zip(frames, faces):
        observed = _observations(found)
        if current and frame - current[-1][0] - 1 > max_gap:
            segments.append(current)
            current = []
        if not len(observed):
            continue
        if current:
            last = current[-1]
            distance = np.hypot(observed[:, 0] - last[1], observed[:, 1] - last[2]) / last[3]
            nearest = int(np.argmin(distance))
            ratio = observed[nearest, 2] / last[3]
            if distance[nearest] <= max_jump and 1 / (1 + max_jump) <= ratio <= 1 + max_jump:
                current.append(np.concatenate([[frame], observed[nearest]]))
                continue
            segments.append(current)
        current = [np.concatenate([[frame], observed[int(np.argmax(observed[:, 2]))]])]
    if current:
        segments.append(current)
    return [np.stack(segment) for segment in segments]


def interpolate_segment(segment: np.ndarray) -> tuple[int, np.ndarray]:
    """Every frame of a segment, from its first to its last key frame, linearly interpolated.

    Args:
        segment: ``(K, 4)`` rows ``[frame, cx, cy, size]`` with increasing frames.

    Returns:
        ``(start, values)``: the first frame and ``(T, 3)`` ``[cx, cy, size]`` per frame.
    """
    frames = segment[:, 0]
    start, stop = int(frames[0]), int(frames[-1]) + 1
    every = np.arange(start, stop)
    values = np.stack([np.interp(every, frames, segment[:, k]) for k in (1, 2, 3)], axis=1)
    return start, values


def smooth_track(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time, ``(T, C) -> (T, C)``; the ends are padded with their own values.

    Args:
        values: ``(T, C)`` per-frame values.
        sigma: standard deviation of the Gaussian in frames (0: unchanged).
    """
    values = np.asarray(values, np.float64)
    check_shape(values, ["T", "C"], "values")
    if sigma <= 0 or len(values) < 2:
        return values.copy()
    radius = max(1, int(round(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    # edge padding: a track that ends near the frame border must not be pulled towards zero
    padded = np.pad(values, ((radius, radius), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(values.shape[1])], 1)


def split_by_drift(values: np.ndarray, max_drift: float = 0.5) -> list[tuple[int, int]]:
    """Cut a smoothed track into pieces that one fixed crop box can hold.

    A piece ends before the frame where the face centre has covered more than ``max_drift`` face
    sizes along x or y, or its size has changed by more than that fraction, since the piece began.

    Args:
        values: ``(T, 3)`` ``[cx, cy, size]`` per frame.
        max_drift: allowed range, in face sizes. With margin ``m`` a face stays inside its box while
            the range is at most ``2·m`` face sizes, so keep it below that.

    Returns:
        ``[(start, stop), ...]`` positions in ``values``, covering it in order.
    """
    pieces: list[tuple[int, int]] = []
    start = 0
    low = high = values[0]
    for t in range(1, len(values)):
        new_low, new_high = np.minimum(low, values[t]), np.maximum(high, values[t])
        span = (new_high[:2] - new_low[:2]) / new_low[2]
        if span.max() > max_drift or new_high[2] > (1 + max_drift) * new_low[2]:
            pieces.append((start, t))
            start, new_low, new_high = t, values[t], values[t]
        low, high = new_low, new_high
    pieces.append((start, len(values)))
    return pieces


def track_faces(
    frames: Sequence[int],
    faces: Sequence[Iterable[Any]],
    num_frames: int | None = None,
    max_gap: int = 10,
    max_jump: float = 0.5,
    sigma: float = 5.0,
    max_drift: float = 0.5,
) -> list[FaceTrack]:
    """Tracks of one face each, with one fixed crop possible per track (see the module docstring).

    Args:
        frames, faces: key frame indices and their faces, as for :func:`link_detections`.
        num_frames: frames in the video; tracks are clipped to it (None: no check).
        max_gap, max_jump: see :func:`link_detections`.
        sigma: smoothing, see :func:`smooth_track`.
        max_drift: see :func:`split_by_drift`.

    Returns:
        tracks in frame order; they do not overlap.
    """
    tracks = []
    for segment in link_detections(frames, faces, max_gap=max_gap, max_jump=max_jump):
        start, values = interpolate_segment(segment)
        if num_frames is not None:
            values = values[: max(0, num_frames - start)]
        if not len(values):
            continue
        values = smooth_track(values, sigma)
        for a, b in split_by_drift(values, max_drift):
            tracks.append(FaceTrack(start + a, values[a:b, :2].copy(), values[a:b, 2].copy()))
    return tracks


def scan_video(
    reader: VideoReader, detector: Any, detect_every: int = 5, chunk: int = 16
) -> tuple[list[int], list[list[Any]]]:
    """Run ``detector`` on the key frames of a video, decoding a few at a time.

    Args:
        reader: an open video (see :func:`~lmtk.datasets.video_reader.open_video`).
        detector: a callable ``image -> list of faces``, e.g. a
            :class:`~lmtk.preprocessing.face_detection.FaceDetector`.
        detect_every: key frame spacing.
        chunk: key frames decoded at once (memory: ``chunk`` full-size frames).

    Returns:
        ``(frames, faces)``: the key frame indices and the faces found on each.
    """
    frames = key_frames(len(reader), detect_every)
    faces: list[list[Any]] = []
    for begin in range(0, len(frames), chunk):
        for image in reader.get_frames(frames[begin : begin + chunk]):
            faces.append(detector(image))
    return frames, faces


def face_box_for_video(
    video: str | os.PathLike | VideoReader | np.ndarray,
    detect_every: int = 5,
    margin: float = 0.6,
    shift: float = 0.1,
    detector: Any = None,
    sigma: float = 5.0,
) -> Box | None:
    """One square crop box for a whole video, holding its main face in every frame; None without a face
    (which :class:`~lmtk.preprocessing.crop.CroppedVideo` reads as the whole frame).

    The main face is the one followed over the most key frames. The box is the square around everything
    its smoothed track covers, widened by ``margin`` face sizes on each side and moved down by
    ``shift`` face sizes, so for a still face it is exactly
    :func:`~lmtk.preprocessing.crop.framing_box` and a moving face is never cut off.

    Args:
        video: a video file, a frame folder, an open reader, or ``(T, H, W, 3)`` uint8 frames.
        detect_every: run the detector on every this-many frames.
        margin, shift: framing, in face sizes (see :func:`~lmtk.preprocessing.crop.framing_box`).
        detector: a :class:`~lmtk.preprocessing.face_detection.FaceDetector` to reuse; by default one
            that also finds small faces in small videos (``upsample=1`` below 640 pixels).
        sigma: smoothing of the track in frames.
    """
    if isinstance(video, np.ndarray):
        reader = ArrayVideo(video, name="video")
    elif isinstance(video, str | os.PathLike):
        reader = open_video(video)
    else:
        reader = video
    if len(reader) == 0:
        return None
    if detector is None:
        from .face_detection import FaceDetector

        detector = FaceDetector(upsample=1 if max(reader.size) < 640 else 0)
    frames, faces = scan_video(reader, detector, detect_every)
    segments = link_detections(frames, faces, max_gap=len(reader), max_jump=0.5)
    if not segments:
        return None
    _, values = interpolate_segment(max(segments, key=len))
    values = smooth_track(values, sigma)
    size = float(np.median(values[:, 2]))
    half = values[:, 2:3] / 2
    low, high = (values[:, :2] - half).min(0), (values[:, :2] + half).max(0)
    cx, cy = (low + high) / 2
    side = float((high - low).max()) + 2 * margin * size
    return Box.from_center(cx, cy + shift * size, side)
