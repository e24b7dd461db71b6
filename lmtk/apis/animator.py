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

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from ..datasets.video_reader import ArrayVideo, open_video
from ..fast_paths import DTYPES, compiled_modules
from ..functional.image_range import float_to_uint8, uint8_to_float
from ..models.lia import check_image_shape, check_image_values
from ..models.lia_generator import transfer_latent
from .device import check_device
from .loading import load_model
from .media import FIT_MODES, fit_image, load_image, to_rgb_uint8
from .smoothing import OneEuroFilter
from .start_frame import NearestMagnitudes

__all__ = [
    "BACKENDS",
    "DTYPES",
    "MODES",
    "OUTPUTS",
    "Animator",
    "ArrayVideo",
    "EncodedSource",
    "TorchNetwork",
    "to_uint8",
]

MODES = ("relative", "absolute")
OUTPUTS = ("numpy", "tensor")
BACKENDS = ("pytorch", "onnxruntime")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(B, 3, H, W)`` images in [-1, 1] as ``(B, H, W, 3)`` uint8 (clamped, rounded) on the CPU."""
    return float_to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()


def _frames_to_tensor(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    # uint8 crosses to the device (4x less traffic than float); same arithmetic as frame_to_tensor.
    # Decoded or PIL-backed frames may be read-only, which torch.from_numpy warns about.
    batch = torch.from_numpy(frames if frames.flags.writeable else frames.copy())
    if device.type == "cuda":
        batch = batch.pin_memory().to(device, non_blocking=True)
    else:
        batch = batch.to(device)
    return uint8_to_float(batch.permute(0, 3, 1, 2)).contiguous()


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


class TorchNetwork:
    """The four network calls the Animator makes, on a PyTorch LIA model (``model.net``).

    The onnxruntime backend (:class:`~lmtk.apis.onnx_backend.OnnxNetwork`) has the same calls on
    exported graphs; everything else the Animator does is shared by both.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    @property
    def size(self) -> int:
        return self.model.size

    def encode_source(self, image: torch.Tensor):
        """Code, feature pyramid, magnitudes and path of source images ``(B, 3, S, S)``."""
        return self.model.net.encode_source(image)[:4]

    def motion(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Magnitudes ``(B, M)`` and path ``(B, D)`` of driving frames ``(B, 3, S, S)``."""
        return self.model.net.motion(frames)

    def path(self, magnitudes: torch.Tensor) -> torch.Tensor:
        return self.model.net.path(magnitudes)

    def decode(self, latent: torch.Tensor, features: Sequence[torch.Tensor]) -> torch.Tensor:
        features = [f.expand(latent.shape[0], *f.shape[1:]) for f in features]
        return self.model.net.decode(latent, features)


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
            :func:`lmtk.fast_paths.compile_model`), whenever it was compiled.
        trust: read a checkpoint that needs more than weights to unpickle (which can run code): only for
            a file you trust (see ``load_model``).
        backend: ``"pytorch"``, or ``"onnxruntime"`` to run the exported graphs (docs/deploy.md) instead
            of PyTorch: ``model_or_path`` is then an export folder, or a model or checkpoint to export
            into ``export_dir`` (checked against it when that folder exists already), or, without
            ``export_dir``, into a temporary folder removed with the animator. Opened from a model or
            checkpoint it keeps that model as ``model`` (edits take their offsets from it); from an
            export folder ``model`` is None, and edits are refused.
        export_dir: see ``backend``.
        int8: with onnxruntime, run the int8 motion and synthesis graphs (exported with ``int8=True``).
        threads: with onnxruntime, its intra-op threads (default: every core).

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
        trust: bool = False,
        backend: str = "pytorch",
        export_dir: str | os.PathLike | None = None,
        int8: bool = False,
        threads: int | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "pytorch" and (export_dir is not None or int8 or threads is not None):
            raise ValueError("export_dir, int8 and threads are options of backend='onnxruntime'")
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
        self.backend = backend
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.resize = resize
        self.prefetch = self.device.type != "cpu" if prefetch is None else bool(prefetch)
        self.pad_batches = pad_batches
        if backend == "onnxruntime":
            if self.dtype != torch.float32:
                raise ValueError("the onnxruntime backend runs float32 graphs (and int8 with int8=True)")
            from .onnx_backend import open_network

            # the model stays for edits (its direction names); the graphs run everything else
            self.network, self.model = open_network(
                self, model_or_path, config, export_dir, int8, threads, trust
            )
            return
        _check_autocast(self.device, self.dtype)
        if isinstance(model_or_path, nn.Module):
            model = model_or_path.to(self.device).eval()
        else:
            model = load_model(model_or_path, config=config, device=self.device, trust=trust)
        if not hasattr(model, "net"):
            raise ValueError(f"expected an LIA model, got {type(model).__name__}")
        if hasattr(model, "_check_weights") and model._check_weights() != torch.float32:
            raise ValueError(
                "the Animator runs float32 weights (and lower precision with dtype=...); call model.float()"
            )
        self.model = model
        self.network = TorchNetwork(model)

    @property
    def size(self) -> int:
        """The model's image size ``S``: every image and frame is brought to ``S x S``."""
        return self.network.size

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

        The shape check (:func:`check_image_shape`) and, for a tensor on the CPU, the check that the
        values are finite and in [-1, 1] (:func:`check_image_values`) are ``model.transfer``'s, on
        either backend."""
        check_image_shape(name, images, self.size)
        if not images.is_floating_point():
            raise ValueError(
                f"{name} is a {str(images.dtype).removeprefix('torch.')} tensor, but a tensor is read as an "
                f"image in [-1, 1]; pass a numpy uint8 array or a float tensor in [-1, 1]"
            )
        check_image_values(name, images)

    def encode_source(self, source, edit: Mapping[str | int, float] | None = None) -> EncodedSource:
        """Encode a source once: a path, PIL image, ``(H, W, 3)`` array (any size) or ``(1, 3, S, S)`` tensor.

        ``edit`` (``{direction: value}``, a direction being a name of ``model.direction_names`` or an
        index) moves the source along those directions before it is animated, as ``model.edit`` does.

        An :class:`EncodedSource` is returned as is, so it can be reused across calls; one encoded by
        another animator is moved to this one's device, and tensors in another low precision are cast to
        this animator's dtype (float32 here: a bfloat16 source then runs in a float32 animator).
        """
        if edit:
            self._check_edit_backend()
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
        with torch.inference_mode(), self._autocast(), _explain_dtype_errors(self):
            code, features, magnitudes, path = self.network.encode_source(tensor)
            edit_path = None
            if edit:
                path, offsets = self._edited_path(magnitudes, edit)
                edit_path = self.network.path(offsets)
        return EncodedSource(image, code, list(features), magnitudes, path, edit_path)

    def _check_edit_backend(self) -> None:
        if self.model is None:
            raise ValueError(
                "an edit needs the model's direction names, which an export folder does not hold: open the "
                "checkpoint (with export_dir=the folder), or edit on the pytorch backend"
            )

    def _edited_path(
        self, magnitudes: torch.Tensor, edit: Mapping[str | int, float]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The path of the magnitudes ``A_{r->s}`` moved by an edit, ``D(A_{r->s} + edit)``, and the edit's
        offsets of the magnitudes."""
        offsets = self.model.edit_offsets(edit, magnitudes)
        return self.network.path(magnitudes + offsets), offsets

    def edit(self, source, edit: Mapping[str | int, float] | None) -> np.ndarray:
        """``source`` moved along the directions of ``edit``, ``(S, S, 3)`` uint8: ``G(z_{s->r} +
        D(A_{r->s} + edit))``, as ``model.edit`` computes it (LIA-X's image editing; an empty edit
        reconstructs the source through its own motion).

        ``source`` is anything :meth:`encode_source` takes; reuse an :class:`EncodedSource` (encoded
        without an edit) to move along the directions interactively: only the path and the decoder run.
        """
        self._check_edit_backend()
        source = self.encode_source(source)
        with torch.inference_mode(), self._autocast(), _explain_dtype_errors(self):
            moved = self._edited_path(source.magnitudes, edit or {})[0]
            latent = transfer_latent(source.code, moved)  # eq. 11 with the source's own motion, edited
            return to_uint8(self.network.decode(latent, source.features))[0]

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
            reader = ArrayVideo(driving, name="driving")
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
        if self.pad_batches is not None:
            return self.pad_batches
        return self.model is not None and bool(compiled_modules(self.model.net))

    def _padded(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames`` repeated at the end up to ``batch_size`` when padding (see ``pad_batches``)."""
        missing = self.batch_size - frames.shape[0]
        if missing <= 0 or not self._pads_batches():
            return frames
        return torch.cat([frames, frames[-1:].expand(missing, *frames.shape[1:])])

    def _motion(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Magnitudes and path of ``frames`` (padded to the batch size when padding)."""
        magnitudes, path = self.network.motion(self._padded(frames))
        return magnitudes[: frames.shape[0]], path[: frames.shape[0]]

    def find_start_frame(self, source, driving, progress: bool = False) -> int:
        """The driving frame whose motion magnitudes are nearest the source's (see :mod:`.start_frame`)."""
        source = self.encode_source(source)
        reader = self.open_driving(driving)
        bar = tqdm(total=len(reader), desc="start frame", unit="frame", disable=not progress, file=sys.stderr)

        def batches():
            for frames in self.driving_batches(reader):
                yield _frames_to_tensor(frames, self.device)
                bar.update(len(frames))

        search = NearestMagnitudes(source.magnitudes[0])
        with bar, torch.inference_mode(), self._autocast():
            for frames in batches():
                search.update(self._motion(frames)[0])
        return search.index

    def _resolve_start(self, source: EncodedSource, reader, start_frame: int | str) -> int:
        if start_frame == "auto":
            return self.find_start_frame(source, reader)
        if isinstance(start_frame, bool) or not isinstance(start_frame, int | np.integer):
            raise ValueError(f"start_frame must be a frame index or 'auto', got {start_frame!r}")
        if not 0 <= start_frame < len(reader):
            raise ValueError(f"start frame {start_frame} is out of range for a video of {len(reader)} frames")
        return int(start_frame)

    def _decode(
        self,
        source: EncodedSource,
        frames: torch.Tensor,
        first: torch.Tensor | None,
        smoother: OneEuroFilter | None = None,
    ) -> torch.Tensor:
        """Animate one batch ``(B, 3, S, S)``; ``first`` is ``w_{r->start}`` for relative transfer.

        A ``smoother`` filters the frames' motion magnitudes (in order, its state carried from the
        previous batch) before they become a path."""
        count = frames.shape[0]
        frames = self._padded(frames)
        magnitudes, path = self.network.motion(frames)
        if smoother is not None:
            path = self.network.path(self._padded(smoother(magnitudes[:count])))
        latent = transfer_latent(source.code, path, first, source.path, source.edit_path)  # eq. 11 / 12
        return self.network.decode(latent, source.features)[:count]

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
        smooth: bool | OneEuroFilter = False,
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
            smooth: filter the driving motion magnitudes over time (:mod:`lmtk.apis.smoothing`): True for
                a :class:`OneEuroFilter` with its defaults at the video's frame rate, or a filter (its
                parameters are used, from a fresh state).
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
        smoother = _smoother(smooth, reader.fps)
        source = self.encode_source(source, edit)
        return self._animate(source, reader, mode, start_frame, output, with_driving, progress, smoother)

    def _animate(
        self, source, reader, mode, start_frame, output, with_driving, progress, smoother=None
    ) -> Iterator:
        first = None
        if mode == "relative":
            start = self._resolve_start(source, reader, start_frame)
            with torch.inference_mode(), self._autocast():
                first = self._motion(self._frame_tensor(reader, start))[1]
        with tqdm(
            total=len(reader), desc="animate", unit="frame", disable=not progress, file=sys.stderr
        ) as bar:
            for frames in self.driving_batches(reader):
                with torch.inference_mode(), self._autocast():
                    result = self._decode(source, _frames_to_tensor(frames, self.device), first, smoother)
                results = to_uint8(result) if output == "numpy" else result.float()
                for driving_frame, frame in zip(frames, results):
                    yield (driving_frame, frame) if with_driving else frame
                    bar.update(1)

    def stream(
        self,
        source,
        frames: Iterable,
        mode: str = "relative",
        start_frame=None,
        micro_batch: int = 1,
        smooth: bool | OneEuroFilter = False,
        fps: float = 25.0,
        output: str = "numpy",
    ) -> Iterator:
        """Animate ``source`` with frames as they arrive (a camera, a socket, a generator): one result per
        frame, in order, as soon as its micro-batch is complete.

        Args:
            source: as for :meth:`animate`; encoded once, before the first frame is read.
            frames: an iterable of ``(H, W, 3)`` uint8 frames (any size, brought to the model size), PIL
                images or ``(3, S, S)`` float tensors in [-1, 1]. It is read lazily, never more than
                ``micro_batch`` frames ahead of the results, so memory stays flat however long it runs.
            mode: ``"relative"`` or ``"absolute"``.
            start_frame: relative mode's reference frame: None (default) takes the stream's first frame,
                chosen on the fly; or a frame given (array, PIL image or tensor, as the frames).
            micro_batch: frames per network call; 1 (default) has the lowest latency, more frames raise
                the throughput and the latency of a frame with it (up to ``micro_batch - 1`` frames).
            smooth: as for :meth:`animate`, at ``fps``.
            fps: the stream's frame rate (the smoothing's time unit).
            output: ``"numpy"`` (``(S, S, 3)`` uint8) or ``"tensor"`` (``(3, S, S)`` float32).

        The same frames batched the same way give the same results as :meth:`animate`.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if isinstance(micro_batch, bool) or not isinstance(micro_batch, int | np.integer) or micro_batch < 1:
            raise ValueError(f"micro_batch must be a positive integer, got {micro_batch!r}")
        smoother = _smoother(smooth, fps)
        first = None
        if mode == "relative" and start_frame is not None:
            with torch.inference_mode(), self._autocast():
                first = self._motion(self._stream_batch([start_frame]))[1]
        source = self.encode_source(source)
        return self._stream(source, iter(frames), mode, first, int(micro_batch), smoother, output)

    def _stream(self, source, frames, mode, first, micro_batch, smoother, output) -> Iterator:
        pending: list = []
        while True:
            frame = next(frames, None)
            if frame is not None:
                pending.append(frame)
            if pending and (frame is None or len(pending) == micro_batch):
                batch = self._stream_batch(pending)
                pending = []
                with torch.inference_mode(), self._autocast():
                    if mode == "relative" and first is None:
                        first = self._motion(batch[:1])[1]
                    result = self._decode(source, batch, first, smoother)
                yield from to_uint8(result) if output == "numpy" else result.float()
            if frame is None:
                return

    def _stream_batch(self, frames: list) -> torch.Tensor:
        """Streamed frames as a checked ``(B, 3, S, S)`` tensor on the device."""
        if all(isinstance(f, torch.Tensor) for f in frames):
            batch = torch.stack([f if f.dim() == 3 else f.squeeze(0) for f in frames]).to(self.device)
            self._check_tensor("frame", batch)
            return batch.float()
        images = [to_rgb_uint8(f) if isinstance(f, Image.Image) else f for f in frames]
        for image in images:
            if not (
                isinstance(image, np.ndarray)
                and image.dtype == np.uint8
                and image.ndim == 3
                and image.shape[2] == 3
            ):
                raise ValueError(
                    f"a streamed frame must be an (H, W, 3) uint8 array, a PIL image or a (3, S, S) float tensor, "
                    f"got {type(image).__name__} {getattr(image, 'shape', '')}"
                )
        return _frames_to_tensor(
            np.stack([fit_image(f, self.size, self.resize) for f in images]), self.device
        )

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
            images = ArrayVideo(driving, name="driving").frames
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
                first = self._motion(reference.to(self.device, torch.float32))[1]
            results = [
                self._decode(source, driving[i : i + self.batch_size], first).float()
                for i in range(0, len(driving), self.batch_size)
            ]
        result = torch.cat(results) if results else driving.new_zeros(driving.shape)
        return to_uint8(result) if output == "numpy" else result


def _smoother(smooth: bool | OneEuroFilter, fps: float) -> OneEuroFilter | None:
    """A fresh filter for one video or stream: the defaults at ``fps``, or a copy of the one given."""
    if isinstance(smooth, OneEuroFilter):
        return dataclasses.replace(smooth)
    if isinstance(smooth, bool):
        return (
            OneEuroFilter(fps=float(fps) if fps and math.isfinite(fps) and fps > 0 else 25.0)
            if smooth
            else None
        )
    raise ValueError(f"smooth must be True, False or a OneEuroFilter, got {smooth!r}")


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
