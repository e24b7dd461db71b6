"""What each tab of the studio does, without the web page: load a model, name its directions, edit a
source, animate a video, drive a source live.

Everything here works on files and arrays, so it runs (and is tested) without gradio; the page
(:mod:`lmtk.studio.app`) only turns the raised :class:`StudioError` messages into page messages.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from ..apis.animator import Animator, EncodedSource
from ..apis.loading import model_config_of
from ..apis.media import VideoWriter, load_image, video_frame_rate
from ..checkpoint import CHECKPOINT_SUFFIXES
from ..models.direction_names import check_direction_names, direction_index

__all__ = ["LABELS_FILE", "LiveStream", "Studio", "StudioError", "labels_path"]

# tools/analyze_directions.py's output file, read beside the checkpoint; the studio saves names here too
LABELS_FILE = "direction_names.json"
MODES = ("relative", "absolute")


class StudioError(ValueError):
    """A mistake a user can make in the page (a bad upload, a conflicting option): one line for the page."""


def labels_path(checkpoint: str | os.PathLike) -> Path:
    """Where the direction names of ``checkpoint`` are saved: ``vox.pt`` -> ``vox.direction_names.json``
    beside it; a work dir (its newest checkpoint) -> ``direction_names.json`` in it."""
    path = Path(checkpoint)
    if path.is_dir():
        return path / LABELS_FILE
    return path.with_name(f"{path.stem}.{LABELS_FILE}")


def _read_labels(path: Path, count: int) -> dict[str, int]:
    try:
        names = json.loads(path.read_text())
        return check_direction_names(names, count)
    except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise StudioError(f"cannot use the direction names in {path}: {error}") from error


@dataclass
class LiveStats:
    """Frames/s over the last frames and the latency (frame received -> result) of the last one."""

    times: collections.deque = field(default_factory=lambda: collections.deque(maxlen=30))
    latency_ms: float = 0.0
    frames: int = 0

    def add(self, received: float, done: float) -> None:
        self.times.append(done)
        self.latency_ms = (done - received) * 1000.0
        self.frames += 1

    @property
    def fps(self) -> float:
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / max(self.times[-1] - self.times[0], 1e-9)

    def text(self) -> str:
        return f"{self.fps:.1f} frames/s, latency {self.latency_ms:.0f} ms ({self.frames} frames)"


class _Inbox:
    """The frames of a live stream as an iterator: ``Animator.stream`` reads one frame per result."""

    def __init__(self) -> None:
        self.frame = None

    def __iter__(self):
        return self

    def __next__(self):
        if self.frame is None:
            raise StopIteration
        frame, self.frame = self.frame, None
        return frame


class LiveStream:
    """A source driven by frames as they arrive, through :meth:`Animator.stream` (one result per frame).

    Args:
        animator: the animator to run.
        source: the encoded source.
        smooth: filter the motion (One-Euro, :mod:`lmtk.apis.smoothing`) at ``fps``.
        fps: the rate frames are expected at (the smoothing's time unit).
        mode: ``"relative"`` (the first frame is the start frame) or ``"absolute"``.
    """

    def __init__(
        self, animator: Animator, source: EncodedSource, smooth: bool, fps: float, mode: str = "relative"
    ) -> None:
        self._inbox = _Inbox()
        self._results = animator.stream(source, self._inbox, mode=mode, smooth=smooth, fps=fps)
        self.stats = LiveStats()

    def feed(self, frame: np.ndarray) -> np.ndarray:
        """The animated frame for one driving frame ``(H, W, 3)`` uint8."""
        received = time.perf_counter()
        self._inbox.frame = frame
        result = next(self._results)
        self.stats.add(received, time.perf_counter())
        return result


class Studio:
    """The model the studio serves and the actions of its tabs.

    Args:
        checkpoint: anything :func:`lmtk.load_model` reads.
        workdir: the folder for outputs (the server's temporary folder).
        device: where the network runs.
        max_seconds: the longest driving video accepted, in seconds.
        models_dir: the folder whose checkpoints the Model tab offers (default: the checkpoint's folder).
        trust: read checkpoints that need more than weights to unpickle (see ``load_model``).
        batch_size: driving frames per network call.
        backend: ``"pytorch"``, or ``"onnxruntime"`` to run the network as exported graphs (on a CPU 2x
            faster in float32 and 3.4x-4.2x in int8 at 256 px; docs/deploy.md). The PyTorch model stays
            loaded for the direction names and the edits' offsets.
        export_dir: with onnxruntime, ``checkpoint``'s export folder (made there when missing; refused
            when exported from other weights). Without it, and for every other model the Model tab
            loads, the model is exported into a temporary folder first.
        int8: with onnxruntime, run the int8 graphs (an export without them gets them, calibrated on
            synthetic images: export with ``--calibration`` for better ones).
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        workdir: str | os.PathLike,
        device: str = "cpu",
        max_seconds: float = 60.0,
        models_dir: str | os.PathLike | None = None,
        trust: bool = False,
        batch_size: int = 8,
        backend: str = "pytorch",
        export_dir: str | os.PathLike | None = None,
        int8: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.outputs = self.workdir / "outputs"
        self.outputs.mkdir(parents=True, exist_ok=True)
        self.device = device
        self.max_seconds = float(max_seconds)
        self.trust = trust
        self.batch_size = batch_size
        self.backend_options = {} if backend == "pytorch" else {"backend": backend, "int8": int8}
        self._export_dirs = {Path(checkpoint): Path(export_dir)} if export_dir is not None else {}
        self.models_dir = Path(models_dir) if models_dir else _folder_of(Path(checkpoint))
        self._sources: collections.OrderedDict[tuple, EncodedSource] = collections.OrderedDict()
        self._live: collections.OrderedDict[str, tuple[tuple, LiveStream]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.generation = -1  # counts the models loaded: cached sources and streams belong to one
        self.load(checkpoint)

    # ------------------------------------------------------------------------------ model
    def load(self, checkpoint: str | os.PathLike) -> None:
        """Serve ``checkpoint`` (the Model tab's switch); the current model stays on failure."""
        options = dict(self.backend_options)
        if options:
            options["export_dir"] = self._export_dirs.get(Path(checkpoint))
        animator = Animator(
            checkpoint, device=self.device, batch_size=self.batch_size, trust=self.trust, **options
        )
        if animator.model is None:
            raise StudioError(
                f"{checkpoint} is an export folder: the studio needs the model's checkpoint too (for the "
                f"directions and edits): give the checkpoint, and the folder with --export-dir"
            )
        count = animator.model.net.motion_basis.num_magnitudes
        names = dict(animator.model.direction_names)
        for path in (labels_path(checkpoint), _folder_of(Path(checkpoint)) / LABELS_FILE):
            if path.is_file():
                names = _read_labels(path, count)
                break
        with self._lock:
            self.animator, self.checkpoint = animator, Path(checkpoint)
            self.names = names  # {name: index}
            self.generation += 1
            self._sources.clear()
            self._live.clear()

    @property
    def num_directions(self) -> int:
        return self.animator.model.net.motion_basis.num_magnitudes

    def labels(self) -> list[str]:
        """One label per direction: its name, or ``d<index>`` for a direction without one."""
        labels = [f"d{i}" for i in range(self.num_directions)]
        for name, index in self.names.items():
            labels[index] = name
        return labels

    def save_labels(self, labels: Sequence[str]) -> Path:
        """Name the directions (``d<index>`` or an empty label leaves one unnamed) and save the names
        beside the checkpoint (:func:`labels_path`), in ``tools/analyze_directions.py``'s format."""
        if len(labels) != self.num_directions:
            raise StudioError(f"expected {self.num_directions} labels, got {len(labels)}")
        given = [(label.strip(), i) for i, label in enumerate(labels) if label.strip() not in ("", f"d{i}")]
        for name, index in given:
            # d<index> labels an unnamed direction: d3 on another is ambiguous
            if re.fullmatch(r"d\d+", name):
                raise StudioError(
                    f"direction {index} cannot be called {name!r}, the label of direction {name[1:]}"
                )
            if [n for n, _ in given].count(name) > 1:
                raise StudioError(f"direction name {name!r} is given twice: each direction needs its own")
        try:
            names = check_direction_names(dict(given), self.num_directions)
        except ValueError as error:
            raise StudioError(str(error)) from error
        path = labels_path(self.checkpoint)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        try:
            partial.write_text(json.dumps(names, indent=2) + "\n")
            partial.replace(path)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise StudioError(f"cannot save the direction names to {path}: {error}") from error
        self.names = names
        return path

    def checkpoints(self) -> list[str]:
        """The checkpoints the Model tab offers: the current one and those in ``models_dir``."""
        found = {str(self.checkpoint)}
        if self.models_dir.is_dir():
            found.update(str(p) for p in self.models_dir.iterdir() if p.suffix in CHECKPOINT_SUFFIXES)
        return sorted(found)

    def info(self) -> dict:
        """What the Model tab shows: the checkpoint, its config, M, size, device and dtype."""
        model = self.animator.model
        weights = next(model.parameters())
        try:
            config = model_config_of(model)
        except ValueError:
            config = None
        return {
            "checkpoint": str(self.checkpoint),
            "architecture": type(model).__name__,
            "directions (M)": self.num_directions,
            "direction names": self.names,
            "size": f"{self.animator.size} x {self.animator.size} px",
            "parameters": f"{sum(p.numel() for p in model.parameters()):,}",
            "device": str(weights.device),
            "dtype": str(weights.dtype).removeprefix("torch."),
            "backend": self._backend_text(),
            "config": config,
        }

    def _backend_text(self) -> str:
        if self.animator.backend == "pytorch":
            return "pytorch"
        network = self.animator.network
        return f"onnxruntime {network.variant} ({network.folder})"

    # ------------------------------------------------------------------------------ edits
    def edits(self, offsets: Mapping[str | int, float] | Sequence[float] | None) -> dict[int, float]:
        """``{index: value}`` of offsets given per direction: a list (one value per direction) or a dict
        whose keys are labels (:meth:`labels`: a direction's name, or ``d<index>``) or indices."""
        if offsets is None:
            return {}
        count = self.num_directions
        if isinstance(offsets, Mapping):
            items = offsets.items()
        elif isinstance(offsets, Sequence) and not isinstance(offsets, str):
            if len(offsets) != count:
                raise StudioError(f"expected one offset per direction ({count}), got {len(offsets)}")
            items = enumerate(offsets)
        else:
            raise StudioError(f"offsets must be a dict {{direction: value}} or a list, got {offsets!r}")
        labels = {label: index for index, label in enumerate(self.labels())}
        edits: dict[int, float] = {}
        for key, value in items:
            try:
                index = direction_index(key, labels, count)
                value = float(value)
            except (TypeError, ValueError) as error:
                raise StudioError(f"bad offset {key!r}: {value!r}: {error}") from error
            if not np.isfinite(value):
                raise StudioError(f"the offset of direction {key!r} must be a finite number, got {value}")
            if value:
                edits[index] = edits.get(index, 0.0) + value
        return edits

    def encode(self, source: str | os.PathLike) -> EncodedSource:
        """The source image encoded once (kept for the next slider move: only the decoder runs then)."""
        image = _load_image(source)
        key = (self.generation, hashlib.sha1(image.tobytes()).hexdigest(), image.shape)
        with self._lock:
            if key in self._sources:
                self._sources.move_to_end(key)
                return self._sources[key]
        encoded = self.animator.encode_source(image)
        with self._lock:
            self._sources[key] = encoded
            while len(self._sources) > 8:
                self._sources.popitem(last=False)
        return encoded

    def edit_image(self, source: str | os.PathLike, offsets=None) -> np.ndarray:
        """``source`` moved along the directions by ``offsets`` (see :meth:`edits`), ``(S, S, 3)`` uint8:
        ``G(z_{s->r} + D(A_{r->s} + offsets))``, as ``model.edit`` computes it."""
        return self.animator.edit(self.encode(source), self.edits(offsets))

    def save_image(self, image: np.ndarray) -> Path:
        """Write an image into the output folder (for the page's download)."""
        from PIL import Image

        self.prune()
        path = self.outputs / f"edited-{uuid.uuid4().hex[:8]}.png"
        Image.fromarray(np.asarray(image, np.uint8)).save(path)
        return path

    # ------------------------------------------------------------------------------ animation
    def animate(
        self,
        source: str | os.PathLike,
        driving: str | os.PathLike,
        mode: str = "relative",
        start_frame: int | str = 0,
        crop_source: bool = False,
        crop_driving: bool = False,
        paste_back: bool = False,
        side_by_side: bool = False,
        offsets=None,
        progress: Callable[[int, int], None] | None = None,
        notes: list[str] | None = None,
    ) -> Path:
        """Animate ``source`` by ``driving`` into an mp4 (the driving video's audio kept) in the output
        folder, and return its path.

        ``start_frame`` is a frame index or ``"auto"`` (relative mode); ``offsets`` edit the source first
        (the Edit video tab); ``progress(done, total)`` is called per frame; what the user should know
        (no face found: the whole image used) is appended to ``notes``.
        """
        from ..apis.compose import FaceCropUnavailable, animate_composed

        notes = [] if notes is None else notes
        if mode not in MODES:
            raise StudioError(f"mode must be one of {MODES}, got {mode!r}")
        if paste_back and not crop_source:
            raise StudioError("paste-back puts the animated face back into the source: turn on crop source")
        if paste_back and side_by_side:
            raise StudioError("paste-back and side-by-side cannot be combined: turn one of them off")
        if start_frame != "auto":
            try:
                start_frame = int(start_frame)
            except (TypeError, ValueError):
                raise StudioError(
                    f"start frame must be a frame number or 'auto', got {start_frame!r}"
                ) from None
        if driving is None:
            raise StudioError("upload a driving video")
        edits = self.edits(offsets)
        animator = self.animator
        image = _load_image(source)
        reader = _open_video(animator, driving)
        fps = reader.fps if reader.fps and np.isfinite(reader.fps) and reader.fps > 0 else 25.0
        if len(reader) / fps > self.max_seconds:
            raise StudioError(
                f"the driving video lasts {len(reader) / fps:.1f} s, longer than this studio's limit of "
                f"{self.max_seconds:g} s: cut it, or start the studio with a larger --max-seconds"
            )
        if mode == "relative" and start_frame != "auto" and not 0 <= start_frame < len(reader):
            raise StudioError(
                f"start frame {start_frame} is out of range: the video has {len(reader)} frames"
            )
        try:
            frames = animate_composed(
                animator,
                image,
                reader,
                mode=mode,
                start_frame=start_frame,
                crop_source=crop_source,
                crop_driving=crop_driving,
                paste_back=paste_back,
                side_by_side=side_by_side,
                edit=edits,
                note=notes.append,
            )
        except FaceCropUnavailable as error:
            raise StudioError(str(error)) from error
        self.prune()
        output = self.outputs / f"animation-{uuid.uuid4().hex[:8]}.mp4"
        try:
            with VideoWriter(output, video_frame_rate(driving), audio_from=driving) as writer:
                for done, frame in enumerate(frames, 1):
                    writer.write(frame)
                    if progress is not None:
                        progress(done, len(reader))
        except (OSError, ValueError, av.FFmpegError) as error:
            raise StudioError(f"cannot animate: {error}") from error
        return output

    # ------------------------------------------------------------------------------ live
    def live(
        self,
        session: str,
        source: str | os.PathLike,
        frame: np.ndarray,
        smooth: bool = True,
        fps: float = 10.0,
    ) -> tuple[np.ndarray, LiveStats]:
        """Animate one webcam ``frame`` of a browser ``session``; its stream is kept from frame to frame
        (the first frame is the start frame) and restarts when the source, the smoothing or the model
        changes."""
        if source is None:
            raise StudioError("upload a source image to drive")
        key = (self.generation, str(source), bool(smooth))  # an upload's path names its content
        with self._lock:
            entry = self._live.get(session)
        if entry is None or entry[0] != key:
            stream = LiveStream(self.animator, self.encode(source), smooth=bool(smooth), fps=fps)
            with self._lock:
                self._live[session] = (key, stream)
                while len(self._live) > 8:
                    self._live.popitem(last=False)
        else:
            stream = entry[1]
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8:
            raise StudioError(f"a webcam frame must be an RGB image, got {frame.dtype} {frame.shape}")
        return stream.feed(np.ascontiguousarray(frame[..., :3])), stream.stats

    def end_live(self, session: str) -> None:
        """Forget a browser session's stream (the page was closed or the stream restarted)."""
        with self._lock:
            self._live.pop(session, None)

    def prune(self, max_age: float = 3600.0) -> None:
        """Delete outputs older than ``max_age`` seconds (the page has offered them for download)."""
        now = time.time()
        for path in self.outputs.iterdir():
            try:
                if now - path.stat().st_mtime > max_age:
                    path.unlink()
            except OSError:
                pass  # removed by another request


def _folder_of(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def _load_image(source) -> np.ndarray:
    if source is None:
        raise StudioError("upload a source image")
    if isinstance(source, np.ndarray):
        return source
    try:
        return load_image(source)
    except (OSError, ValueError) as error:
        raise StudioError(
            f"the source is not an image that can be read: {Path(source).name} ({error})"
        ) from error


def _open_video(animator: Animator, driving):
    try:
        return animator.open_driving(driving)
    except (OSError, ValueError, TypeError, av.FFmpegError) as error:
        raise StudioError(f"the driving video cannot be read: {Path(driving).name} ({error})") from error
