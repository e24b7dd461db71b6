"""Animate a still image with the motion of a driving video, streaming and batched.

:class:`Animator` avoids the waste of a frame-by-frame demo loop:

- the source is encoded once; its code ``z_{s->r}``, feature pyramid and own motion ``w_{r->s}`` are
  kept and the features are broadcast over each batch;
- a driving frame only needs its motion code, so only ``encode_code`` runs on it (no feature pyramid);
- the driving video is decoded ``chunk_size`` frames at a time (on accelerators in a background
  thread, so decoding overlaps the network), so memory stays bounded whatever the video length;
- frames run through the network ``batch_size`` at a time under ``torch.inference_mode`` and, on request,
  bf16/fp16 autocast.

Results are yielded frame by frame in driving order, so a caller can write them to a file as they come.

Example:
    >>> animator = Animator("lia_vox.pt", device="cuda", batch_size=32)  # doctest: +SKIP
    >>> with VideoWriter("out.mp4", fps=video_frame_rate("driving.mp4")) as out:  # doctest: +SKIP
    ...     for frame in animator.animate("source.png", "driving.mp4", start_frame="auto"):
    ...         out.write(frame)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import queue
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from ..datasets.video_reader import open_video
from .device import check_device
from .fast_paths import DTYPES, compiled_modules
from .loading import load_model
from .media import FIT_MODES, fit_image, load_image, to_rgb_uint8
from .start_frame import find_start_frame

__all__ = ["DTYPES", "MODES", "OUTPUTS", "Animator", "ArrayVideo", "EncodedSource", "to_uint8"]

MODES = ("relative", "absolute")
OUTPUTS = ("numpy", "tensor")
_RANGE_SLACK = 0.1  # resampled or generated images overshoot [-1, 1] a little; 0-255 values do not pass


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(B, 3, H, W)`` images in [-1, 1] as ``(B, H, W, 3)`` uint8 (clamped, rounded) on the CPU."""
    images = images.float().clamp(-1.0, 1.0).add(1.0).mul(127.5).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()


def _frames_to_tensor(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    # uint8 crosses to the device (4x less traffic than float); same arithmetic as frame_to_tensor.
    # Decoded or PIL-backed frames may be read-only, which torch.from_numpy warns about.
    batch = torch.from_numpy(frames if frames.flags.writeable else frames.copy())
    if device.type == "cuda":
        batch = batch.pin_memory().to(device, non_blocking=True)
    else:
        batch = batch.to(device)
    return batch.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0).contiguous()


class ArrayVideo:
    """An in-memory ``(N, H, W, 3)`` uint8 array with the reader interface of :func:`open_video`."""

    def __init__(self, frames: np.ndarray, fps: float = 25.0) -> None:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
            raise ValueError(
                f"driving frames must be an (N, H, W, 3) uint8 array, got {frames.shape} {frames.dtype}"
            )
        self.frames = frames
        self.path = Path("<array>")
        self._fps = float(fps)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.frames.shape[1:3])

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        return self.frames[list(indices)]


@dataclass
class EncodedSource:
    """A source image encoded once: everything the animation needs from it.

    Attributes:
        image: the source at model size, ``(S, S, 3)`` uint8 (for side-by-side views).
        code: ``z_{s->r}`` ``(1, D)``.
        features: the appearance pyramid, coarse to fine, each ``(1, C, r, r)``.
        magnitudes: ``A_{r->s}`` ``(1, M)`` (what the automatic start frame compares against).
        path: ``w_{r->s}`` ``(1, D)`` (the source's own motion, used by relative transfer); with an edit,
            ``D(A_{r->s} + edit)`` (LIA-X's edit-then-animate).
        edit_path: ``D(edit)`` ``(1, D)``, added in absolute mode; None without an edit.

    The tensors are made under ``torch.inference_mode`` and so take no part in autograd: to optimise
    through the generator, ``clone()`` them outside inference mode (or encode with ``model.net.encode``).
    """

    image: np.ndarray
    code: torch.Tensor
    features: list[torch.Tensor]
    magnitudes: torch.Tensor
    path: torch.Tensor
    edit_path: torch.Tensor | None = None


def _prefetch(items: Iterable, depth: int = 1) -> Iterator:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead (bounded memory)."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((done, None))
        except BaseException as error:  # noqa: BLE001 - re-raised in the consumer
            buffer.put((done, error))

    thread = threading.Thread(target=produce, name="lmtk-frame-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                buffer.get_nowait()
        thread.join(timeout=5)


class Animator:
    """Batched, streaming LIA animation of one source image by a driving video.

    Args:
        model_or_path: an LIA model, or anything :func:`lmtk.load_model` reads (a config, an lmtk
            checkpoint, a published LIA checkpoint). A model given is used as it is, not copied: it is
            moved to ``device`` and put in eval mode (call ``.train()`` again to train it on).
        config: config overriding the architecture of an lmtk checkpoint (see ``load_model``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: ``"float32"``, or ``"bfloat16"`` / ``"float16"`` to run under autocast.
        batch_size: driving frames per network call.
        chunk_size: driving frames decoded per read; with the batch in flight this bounds the frames held
            in memory.
        resize: how images and frames are brought to the model size: ``"resize"`` (squash the whole
            frame) or ``"crop"`` (centred square, then resize).
        prefetch: decode the next chunk in a background thread while the network runs. None (default)
            turns it on for accelerators only: on the CPU the network already uses every core, so a
            decoding thread gains little and competes with the network's thread pool.
        pad_batches: run every network call at ``batch_size`` frames, padding a video's last batch (and
            relative mode's start frame) with copies of its last frame and dropping their results. A
            compiled model then sees one shape: a new shape costs a recompilation, and with CUDA graphs
            a new graph. None (default): pad when the model's encoder or generator is compiled (see
            :func:`lmtk.apis.fast_paths.compile_model`), whenever it was compiled.

    Raises:
        ValueError: a bad option, an unavailable device, or a dtype the device cannot autocast to.
    """

    def __init__(
        self,
        model_or_path: nn.Module | str | os.PathLike,
        config: str | os.PathLike | dict | None = None,
        device: str | torch.device = "cpu",
        dtype: str = "float32",
        batch_size: int = 16,
        chunk_size: int = 64,
        resize: str = "resize",
        prefetch: bool | None = None,
        pad_batches: bool | None = None,
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
        if resize not in FIT_MODES:
            raise ValueError(f"resize must be one of {FIT_MODES}, got {resize!r}")
        for name, value in (("batch_size", batch_size), ("chunk_size", chunk_size)):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        batch_size, chunk_size = int(batch_size), int(chunk_size)
        self.device = check_device(device)
        self.dtype = DTYPES[dtype]
        _check_autocast(self.device, self.dtype)
        if isinstance(model_or_path, nn.Module):
            model = model_or_path.to(self.device).eval()
        else:
            model = load_model(model_or_path, config=config, device=self.device)
        if not hasattr(model, "net"):
            raise ValueError(f"expected an LIA model, got {type(model).__name__}")
        if hasattr(model, "_check_weights") and model._check_weights() != torch.float32:
            raise ValueError(
                "the Animator runs float32 weights (and lower precision with dtype=...); call model.float()"
            )
        self.model = model
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.resize = resize
        self.prefetch = self.device.type != "cpu" if prefetch is None else bool(prefetch)
        self.pad_batches = pad_batches

    @property
    def size(self) -> int:
        """The model's image size ``S``: every image and frame is brought to ``S x S``."""
        return self.model.size

    def _autocast(self):
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    # ------------------------------------------------------------------------------ inputs
    def _source_image(self, source) -> np.ndarray:
        if isinstance(source, str | os.PathLike):
            image = load_image(source)
        elif isinstance(source, Image.Image):
            image = to_rgb_uint8(source)
        elif isinstance(source, np.ndarray):
            image = source
            if source.ndim != 3 or source.shape[2] != 3 or source.dtype != np.uint8:
                try:
                    image = to_rgb_uint8(Image.fromarray(source))
                except (TypeError, ValueError) as error:
                    raise ValueError(
                        f"cannot use a {source.dtype} array of shape {source.shape} as an image; pass (H, W, 3) "
                        f"uint8 RGB values 0-255 (for floats in [0, 1]: (array * 255).round().astype(np.uint8))"
                    ) from error
        elif isinstance(source, torch.Tensor):
            tensor = source if source.dim() == 4 else source.unsqueeze(0)
            self._check_tensor("source", tensor)
            if tensor.shape[0] != 1:
                raise ValueError(f"one source image at a time, got a batch of {tensor.shape[0]}")
            return to_uint8(tensor)[0]
        else:
            raise TypeError(
                f"source must be a path, PIL image, numpy array or tensor, got {type(source).__name__}"
            )
        return fit_image(image, self.size, self.resize)

    def _check_tensor(self, name: str, images: torch.Tensor) -> None:
        """``images`` must be ``(B, 3, S, S)`` and float: an integer tensor is not read as pixel values.

        A tensor on the CPU is also checked to be finite and in [-1, 1] (0-255 values gave saturated
        output and no error); on a GPU that check would wait for the device, so it is left out there."""
        self.model._check_images(name, images)
        if not images.is_floating_point():
            raise ValueError(
                f"{name} is a {str(images.dtype).removeprefix('torch.')} tensor, but a tensor is read as an "
                f"image in [-1, 1]; pass a numpy uint8 array or a float tensor in [-1, 1]"
            )
        if images.device.type == "cpu" and images.numel():
            low, high = (float(v) for v in torch.aminmax(images))
            if not (math.isfinite(low) and math.isfinite(high)):
                raise ValueError(f"{name} has NaN or infinite values")
            if low < -1 - _RANGE_SLACK or high > 1 + _RANGE_SLACK:
                hint = " (x / 127.5 - 1 for values 0-255)" if high > 2 else ""
                raise ValueError(
                    f"{name} has values in [{low:.4g}, {high:.4g}], but a tensor is read as an image in "
                    f"[-1, 1]; rescale it{hint} or pass a numpy uint8 array"
                )

    def encode_source(self, source, edit: Mapping[str | int, float] | None = None) -> EncodedSource:
        """Encode a source once: a path, PIL image, ``(H, W, 3)`` array (any size) or ``(1, 3, S, S)`` tensor.

        ``edit`` (``{direction: value}``, a direction being a name of ``model.direction_names`` or an
        index) moves the source along those directions before it is animated, as ``model.edit`` does.

        An :class:`EncodedSource` is returned as is, so it can be reused across calls; one encoded by
        another animator is moved to this one's device, and tensors in another low precision are cast to
        this animator's dtype (float32 here: a bfloat16 source then runs in a float32 animator).
        """
        if isinstance(source, EncodedSource):
            if edit:
                raise ValueError(
                    "an EncodedSource is already encoded: give the edit to encode_source instead"
                )
            return self._adopt(source)
        image = self._source_image(source)
        if isinstance(source, torch.Tensor):
            tensor = (source if source.dim() == 4 else source.unsqueeze(0)).to(self.device, torch.float32)
        else:
            tensor = _frames_to_tensor(image[None], self.device)
        net = self.model.net
        with torch.inference_mode(), self._autocast(), _explain_dtype_errors(self):
            code, features = net.encode(tensor)
            magnitudes = net.magnitudes(code)
            offsets = self.model.edit_offsets(edit, magnitudes) if edit else None
            path = net.path(magnitudes if offsets is None else magnitudes + offsets)
            edit_path = None if offsets is None else net.path(offsets)
        return EncodedSource(image, code, list(features), magnitudes, path, edit_path)

    def _adopt(self, source: EncodedSource) -> EncodedSource:
        """``source`` on this animator's device, each tensor in float32 or this animator's dtype."""

        def fit(tensor: torch.Tensor) -> torch.Tensor:
            # float32 and this animator's dtype are what its own encode_source makes; autocast takes both
            dtype = tensor.dtype if tensor.dtype in (torch.float32, self.dtype) else self.dtype
            return tensor.to(self.device, dtype)

        edit = () if source.edit_path is None else (source.edit_path,)
        if all(fit(t) is t for t in (source.code, source.magnitudes, source.path, *edit, *source.features)):
            return source
        return dataclasses.replace(
            source,
            code=fit(source.code),
            features=[fit(f) for f in source.features],
            magnitudes=fit(source.magnitudes),
            path=fit(source.path),
            edit_path=None if source.edit_path is None else fit(source.edit_path),
        )

    def open_driving(self, driving):
        """A reader for a video file, a frame folder, an ``(N, H, W, 3)`` uint8 array, or a reader.

        Raises:
            FileNotFoundError, ValueError: the video is missing, unreadable or has no frames.
        """
        if isinstance(driving, str | os.PathLike):
            reader = open_video(driving)
        elif isinstance(driving, np.ndarray):
            reader = ArrayVideo(driving)
        elif hasattr(driving, "get_frames") and hasattr(driving, "__len__"):
            reader = driving
        else:
            raise TypeError(
                f"driving must be a video path, frame array or reader, got {type(driving).__name__}"
            )
        if len(reader) == 0:
            raise ValueError(f"the driving video {reader.path} has no frames")
        return reader

    def _read_chunks(self, reader, start: int, stop: int) -> Iterator[np.ndarray]:
        for first in range(start, stop, self.chunk_size):
            frames = reader.get_frames(range(first, min(stop, first + self.chunk_size)))
            yield np.stack([fit_image(frame, self.size, self.resize) for frame in frames])

    def driving_batches(self, reader, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Frames ``start:stop`` at model size, ``(B, S, S, 3)`` uint8, ``batch_size`` at a time.

        With ``prefetch``, decoding runs one chunk ahead in a background thread.
        """
        stop = len(reader) if stop is None else stop
        pending: list[np.ndarray] = []
        held = 0
        chunks = self._read_chunks(reader, start, stop)
        for chunk in _prefetch(chunks) if self.prefetch else chunks:
            pending.append(chunk)
            held += len(chunk)
            while held >= self.batch_size:
                frames = np.concatenate(pending) if len(pending) > 1 else pending[0]
                yield frames[: self.batch_size]
                rest = frames[self.batch_size :]
                pending, held = ([rest] if len(rest) else []), len(rest)
        if held:
            yield np.concatenate(pending)

    def _frame_tensor(self, reader, index: int) -> torch.Tensor:
        frame = fit_image(reader.get_frames([index])[0], self.size, self.resize)
        return _frames_to_tensor(frame[None], self.device)

    # ------------------------------------------------------------------------------ motion
    def _pads_batches(self) -> bool:
        return bool(compiled_modules(self.model.net)) if self.pad_batches is None else self.pad_batches

    def _padded(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames`` repeated at the end up to ``batch_size`` when padding (see ``pad_batches``)."""
        missing = self.batch_size - frames.shape[0]
        if missing <= 0 or not self._pads_batches():
            return frames
        return torch.cat([frames, frames[-1:].expand(missing, *frames.shape[1:])])

    def _encode_code(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model.net.encode_code(self._padded(frames))[: frames.shape[0]]

    def _motion(self, frames: torch.Tensor) -> torch.Tensor:
        net = self.model.net
        return net.path(net.magnitudes(self._encode_code(frames)))

    def find_start_frame(self, source, driving, progress: bool = False) -> int:
        """The driving frame whose motion magnitudes are nearest the source's (see :mod:`.start_frame`)."""
        source = self.encode_source(source)
        reader = self.open_driving(driving)
        bar = tqdm(total=len(reader), desc="start frame", unit="frame", disable=not progress, file=sys.stderr)

        def batches():
            for frames in self.driving_batches(reader):
                yield _frames_to_tensor(frames, self.device)
                bar.update(len(frames))

        with bar, torch.inference_mode(), self._autocast():
            index, _ = find_start_frame(self.model.net, source.code, batches(), self._encode_code)
        return index

    def _resolve_start(self, source: EncodedSource, reader, start_frame: int | str) -> int:
        if start_frame == "auto":
            return self.find_start_frame(source, reader)
        if isinstance(start_frame, bool) or not isinstance(start_frame, int | np.integer):
            raise ValueError(f"start_frame must be a frame index or 'auto', got {start_frame!r}")
        if not 0 <= start_frame < len(reader):
            raise ValueError(f"start frame {start_frame} is out of range for a video of {len(reader)} frames")
        return int(start_frame)

    def _decode(
        self, source: EncodedSource, frames: torch.Tensor, first: torch.Tensor | None
    ) -> torch.Tensor:
        """Animate one batch ``(B, 3, S, S)``; ``first`` is ``w_{r->start}`` for relative transfer."""
        count = frames.shape[0]
        frames = self._padded(frames)
        batch = frames.shape[0]
        path = self._motion(frames)
        if first is None:
            latent = source.code + path
            if source.edit_path is not None:
                latent = latent + source.edit_path
        else:
            latent = source.code + (path - first) + source.path
        features = [f.expand(batch, *f.shape[1:]) for f in source.features]
        return self.model.net.decode(latent, features)[:count]

    # ------------------------------------------------------------------------------ animation
    def animate(
        self,
        source,
        driving,
        mode: str = "relative",
        start_frame: int | str = 0,
        output: str = "numpy",
        with_driving: bool = False,
        progress: bool = False,
        edit: Mapping[str | int, float] | None = None,
    ) -> Iterator:
        """Animate ``source`` with every frame of ``driving``, yielding one result per driving frame in order.

        Args:
            source: a path, PIL image, array or tensor (see :meth:`encode_source`), or an
                :class:`EncodedSource`.
            driving: a video file, frame folder, ``(N, H, W, 3)`` uint8 array or reader.
            mode: ``"relative"`` (eq. 12: the source moves by the motion between the start frame and
                frame t, keeping its own pose at the start frame) or ``"absolute"`` (eq. 11: the source
                takes the pose of frame t; the start frame plays no part).
            start_frame: the driving frame whose pose matches the source (relative mode), or ``"auto"`` to
                pick the frame nearest the source in motion magnitudes. Output frame t is always driving
                frame t: the start frame only sets the reference of the relative motion.
            output: ``"numpy"`` yields ``(S, S, 3)`` uint8; ``"tensor"`` yields ``(3, S, S)`` float32 on
                the animator's device, unclamped.
            with_driving: yield ``(driving_frame, result)`` pairs, the driving frame as ``(S, S, 3)`` uint8.
            progress: show a progress bar on stderr.
            edit: ``{direction: value}`` applied to the source first (see :meth:`encode_source`).

        The inputs are checked and the source encoded when this is called; frames are computed as they
        are consumed (an automatic start frame costs one extra pass of motion codes first).
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        reader = self.open_driving(driving)
        if mode == "relative" and start_frame != "auto":
            self._resolve_start(None, reader, start_frame)
        source = self.encode_source(source, edit)
        return self._animate(source, reader, mode, start_frame, output, with_driving, progress)

    def _animate(self, source, reader, mode, start_frame, output, with_driving, progress) -> Iterator:
        first = None
        if mode == "relative":
            start = self._resolve_start(source, reader, start_frame)
            with torch.inference_mode(), self._autocast():
                first = self._motion(self._frame_tensor(reader, start))
        with tqdm(
            total=len(reader), desc="animate", unit="frame", disable=not progress, file=sys.stderr
        ) as bar:
            for frames in self.driving_batches(reader):
                with torch.inference_mode(), self._autocast():
                    result = self._decode(source, _frames_to_tensor(frames, self.device), first)
                results = to_uint8(result) if output == "numpy" else result.float()
                for driving_frame, frame in zip(frames, results):
                    yield (driving_frame, frame) if with_driving else frame
                    bar.update(1)

    def _driving_frames(self, driving) -> torch.Tensor:
        """``animate_frames``' driving frames as a checked ``(N, 3, S, S)`` float tensor."""
        images = None  # uint8 frames of any size, each brought to the model size below
        if (
            isinstance(driving, list | tuple)
            and driving
            and all(isinstance(f, torch.Tensor) for f in driving)
        ):
            driving = torch.stack(list(driving))
        elif isinstance(driving, list | tuple):
            images = [to_rgb_uint8(f) if isinstance(f, Image.Image) else f for f in driving]
            if not all(isinstance(f, np.ndarray) and f.dtype == np.uint8 and f.ndim == 3 for f in images):
                raise _driving_frames_error(driving)
        elif isinstance(driving, np.ndarray):
            images = ArrayVideo(driving).frames
        if images is not None:
            frames = [fit_image(f, self.size, self.resize) for f in images]
            frames = np.stack(frames) if frames else np.empty((0, self.size, self.size, 3), np.uint8)
            driving = _frames_to_tensor(frames, self.device)
        if not isinstance(driving, torch.Tensor):
            raise _driving_frames_error(driving)
        self._check_tensor("driving", driving)
        return driving

    def animate_frames(
        self,
        source,
        driving: torch.Tensor | np.ndarray,
        mode: str = "relative",
        driving_first: int | torch.Tensor | None = None,
        output: str = "tensor",
        edit: Mapping[str | int, float] | None = None,
    ) -> torch.Tensor | np.ndarray:
        """Animate a batch of in-memory driving frames at once.

        Args:
            source: as for :meth:`animate`.
            driving: ``(N, 3, S, S)`` float tensor in [-1, 1] at model size, ``(N, H, W, 3)`` uint8 frames
                of any size (brought to the model size), or a list of frames (uint8 arrays, PIL images, or
                ``(3, S, S)`` tensors). No frames give an empty result. A video file: :meth:`animate`.
            mode: ``"relative"`` or ``"absolute"``.
            driving_first: relative mode's reference: an index into ``driving`` (default 0) or a
                ``(1, 3, S, S)`` frame.
            output: ``"tensor"``: ``(N, 3, S, S)`` float32; ``"numpy"``: ``(N, S, S, 3)`` uint8.
            edit: ``{direction: value}`` applied to the source first (see :meth:`encode_source`).
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if isinstance(driving_first, torch.Tensor) and driving_first.dim() == 0:
            driving_first = int(driving_first)  # an index given as a tensor
        if isinstance(driving_first, bool) or not (
            driving_first is None or isinstance(driving_first, int | np.integer | torch.Tensor)
        ):
            raise ValueError(
                f"driving_first must be a frame index or a (1, 3, S, S) tensor, got {driving_first!r}"
            )
        driving = self._driving_frames(driving)
        driving = driving.to(self.device, torch.float32)
        source = self.encode_source(source, edit)
        first = None
        with torch.inference_mode(), self._autocast():
            if mode == "relative" and (len(driving) or driving_first is not None):  # no frames: no reference
                if driving_first is None or isinstance(driving_first, int | np.integer):
                    index = int(driving_first or 0)
                    if not 0 <= index < len(driving):
                        raise ValueError(f"driving_first {index} out of range for {len(driving)} frames")
                    reference = driving[index : index + 1]
                else:
                    reference = driving_first if driving_first.dim() == 4 else driving_first.unsqueeze(0)
                    self._check_tensor("driving_first", reference)
                    if reference.shape[0] != 1:  # a batch would pair its frames with the driving frames
                        raise ValueError(
                            f"driving_first must be one frame, (1, 3, S, S), got a batch of {reference.shape[0]}"
                        )
                first = self._motion(reference.to(self.device, torch.float32))
            results = [
                self._decode(source, driving[i : i + self.batch_size], first).float()
                for i in range(0, len(driving), self.batch_size)
            ]
        result = torch.cat(results) if results else driving.new_zeros(driving.shape)
        return to_uint8(result) if output == "numpy" else result


def _driving_frames_error(driving) -> ValueError:
    return ValueError(
        f"driving must be a (N, 3, S, S) float tensor in [-1, 1], a (N, H, W, 3) uint8 array, or a list of "
        f"frames (uint8 arrays, PIL images or (3, S, S) tensors), got {type(driving).__name__}; for a video "
        f"file or a frame folder use animate()"
    )


def _check_autocast(device: torch.device, dtype: torch.dtype) -> None:
    if dtype == torch.float32:
        return
    name = str(dtype).removeprefix("torch.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with torch.autocast(device.type, dtype=dtype):
                enabled = torch.is_autocast_enabled(device.type)
        except (RuntimeError, ValueError) as error:
            raise ValueError(f"{name} autocast is not supported on {device.type}: {error}") from error
    if not enabled or caught:
        reason = f": {caught[0].message}" if caught else ""
        raise ValueError(f"{name} autocast is not supported on {device.type}{reason}; use float32")


@contextlib.contextmanager
def _explain_dtype_errors(animator: Animator):
    try:
        yield
    except (RuntimeError, NotImplementedError) as error:
        if animator.dtype == torch.float32:
            raise
        name = str(animator.dtype).removeprefix("torch.")
        raise ValueError(
            f"the model does not run in {name} on {animator.device.type} ({error}); use dtype float32"
        ) from error
