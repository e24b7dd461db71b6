"""Image loading and video writing for animation: what goes into a model and what comes out of it.

- :func:`load_image` reads any still image Pillow can open (RGB, RGBA, palette, grayscale, 16-bit
  PNG, EXIF-rotated JPEG) as ``(H, W, 3)`` uint8 RGB.
- :func:`fit_image` brings an image of any size and aspect to a square model size, by squashing the whole
  frame (``"resize"``) or by cutting the centred square first (``"crop"``).
- :func:`video_frame_rate` reads a video's exact frame rate (a :class:`~fractions.Fraction`, so 30000/1001
  stays exact).
- :class:`VideoWriter` encodes frames to H.264 with PyAV while they arrive, interleaves the audio track
  of another file (stream copy when the container accepts its codec, AAC otherwise) and writes to a
  temporary file in the destination folder that is renamed into place only when everything succeeded.

Example:
    >>> frame = fit_image(load_image("portrait.png"), 256, mode="crop")  # doctest: +SKIP
    >>> with VideoWriter("out.mp4", fps=video_frame_rate("driving.mp4"), audio_from="driving.mp4") as out:
    ...     out.write(frame)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..datasets.transforms import resize_image
from ..datasets.video_reader import DEFAULT_FOLDER_FPS, VIDEO_EXTENSIONS, open_video
from ..functional.checks import check_shape
from ..processes import host_id, process_alive

__all__ = [
    "CRF_RANGE",
    "FIT_MODES",
    "VideoWriter",
    "center_crop",
    "center_square",
    "fit_image",
    "has_audio",
    "load_image",
    "to_rgb_uint8",
    "video_frame_rate",
]

FIT_MODES = ("resize", "crop")
# x264's constant rate factor for 8-bit video: 0 (lossless) to 51 (worst)
CRF_RANGE = (0, 51)

# Video codecs tried in order; the first one this PyAV build can encode wins.
_VIDEO_CODECS = ("libx264", "h264", "mpeg4")
# AVI stores no presentation times: read back, H.264 in AVI starts one frame late (0.033 s at 30 fps) and
# drifts from its audio by that frame, so AVI gets its native MPEG-4 Part 2 codec
_CONTAINER_VIDEO_CODECS = {".avi": ("mpeg4", *_VIDEO_CODECS)}
# MPEG-4 Part 2 at quantiser 2 (lambda = 2 * FF_QP2LAMBDA): about the quality of x264 at crf 18
_MPEG4_OPTIONS = {"flags": "+qscale", "global_quality": str(2 * 118)}


# ----------------------------------------------------------------------------------------- images
def _high_depth_to_uint8(array: np.ndarray, mode: str) -> np.ndarray:
    if mode == "F":
        # float images carry no declared range: [0, 1] is the common convention, wider data is rescaled
        peak = float(np.nanmax(array)) if array.size else 1.0
        scale = 255.0 / peak if peak > 1.0 else 255.0
        return np.clip(np.nan_to_num(array) * scale, 0, 255).round().astype(np.uint8)
    # "I;16*" and 16-bit PNGs opened as "I": Pillow's own convert("RGB") clips everything above 255
    return (np.clip(array.astype(np.int64), 0, 65535) // 257).astype(np.uint8)


def to_rgb_uint8(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A Pillow image as ``(H, W, 3)`` uint8 RGB.

    Transparent pixels are composited over ``background``; 16-bit and 32-bit grayscale are scaled down
    to 8 bits rather than clipped; grayscale is repeated over the three channels.
    """
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        grey = _high_depth_to_uint8(np.asarray(image), mode)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("L", "1", "CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        image = Image.alpha_composite(canvas, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB")))


def load_image(path: str | os.PathLike, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB (see :func:`to_rgb_uint8`), EXIF rotation applied.

    A video file (``.mp4``, ``.mov`` ...) gives its first frame, so a clip can serve as a still source.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not an image Pillow can decode.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if not path.is_file():
        raise ValueError(f"not an image file: {path}")
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return open_video(path).get_frames([0])[0]
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb_uint8(image, background)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from error


def center_square(height: int, width: int) -> tuple[int, int, int]:
    """``(top, left, side)`` of the largest centred square of a ``height x width`` image."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def center_crop(image: np.ndarray) -> np.ndarray:
    """The largest centred square of an ``(H, W, C)`` image."""
    top, left, side = center_square(*image.shape[:2])
    return image[top : top + side, left : left + side]


def fit_image(image: np.ndarray, size: int, mode: str = "resize") -> np.ndarray:
    """Bring an ``(H, W, 3)`` uint8 image to ``(size, size, 3)``.

    Args:
        image: the image.
        size: the model size.
        mode: ``"resize"`` scales the whole image (a non-square image is squashed); ``"crop"`` keeps
            the aspect by cutting the centred square first, then scales it.
    """
    if mode not in FIT_MODES:
        raise ValueError(f"resize mode must be one of {FIT_MODES}, got {mode!r}")
    check_shape(image, ["H", "W", 3], "image")
    if mode == "crop":
        image = center_crop(image)
    return np.ascontiguousarray(resize_image(image, size))


# ----------------------------------------------------------------------------------------- video
def _rate_of(stream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return Fraction(rate)
    return None


def video_frame_rate(path: str | os.PathLike, default: float = DEFAULT_FOLDER_FPS) -> Fraction:
    """The frame rate of a video file as an exact fraction (its average rate), ``default`` for a folder.

    Raises:
        ValueError: the file has no video stream or cannot be opened.
    """
    path = Path(path)
    if path.is_dir():
        return Fraction(default).limit_denominator(1001)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} has no video stream")
            rate = _rate_of(container.streams.video[0])
    except av.FFmpegError as error:
        raise ValueError(f"cannot read video {path}: {error}") from error
    return rate if rate is not None else Fraction(default).limit_denominator(1001)


def has_audio(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a media file with at least one audio stream (False for folders)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except av.FFmpegError:
        return False


# VideoWriter's temporary file: ".<name>.<pid>@<host>.<random>.partial.<suffix>" (the writer's process
# and machine in the name, so that the next writer into the folder knows when nobody writes it any more)
_PARTIAL_NAME = re.compile(r"\..*?\.(?:(\d+)@([0-9a-f]{8})\.)?[a-z0-9_]{8}\.partial\.\w+")
# a writer adds frames all along: a partial file untouched this long has none (it was left by another
# machine, by a process whose number was reused since, or by a version of lmtk without <pid>@<host>)
_PARTIAL_MAX_IDLE_S = 24 * 3600


def _remove_stale_partials(folder: Path) -> None:
    """Delete the temporary files of VideoWriters that died (SIGKILL, power loss) in ``folder``: those of
    a process of this machine that has ended, and any untouched for a day."""
    here, now = host_id(), time.time()
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            match = _PARTIAL_NAME.fullmatch(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            pid, host = match.groups()
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to delete
                dead = pid is not None and host == here and not process_alive(int(pid))
                if dead or now - entry.stat(follow_symlinks=False).st_mtime > _PARTIAL_MAX_IDLE_S:
                    os.unlink(entry.path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _video_codec(name: str | None, suffix: str = ".mp4") -> str:
    candidates = (name,) if name else _CONTAINER_VIDEO_CODECS.get(suffix.lower(), _VIDEO_CODECS)
    for codec in candidates:
        if codec in av.codecs_available:
            return codec
    raise ValueError(f"no usable video encoder in this PyAV build (tried {', '.join(candidates)})")


def _accepts_copy(source: Path, container) -> bool:
    """Whether ``container``'s format can hold a copy of ``source``'s first audio stream.

    ``supported_codecs`` is not enough: the mp4 muxer lists PCM but refuses some channel layouts, and
    the mov muxer lists Opus but takes it only in MP4. Both fail late (header or trailer), so one packet
    is written into an in-memory file of the same format.
    """
    try:
        with av.open(str(source)) as input, av.open(io.BytesIO(), "w", format=container.format.name) as probe:
            stream = input.streams.audio[0]
            out = probe.add_stream_from_template(stream)
            for packet in input.demux(stream):
                if packet.size and packet.pts is not None:
                    packet.stream = out
                    probe.mux(packet)
                    break
        return True
    except (av.FFmpegError, ValueError):
        return False


class _AudioTrack:
    """Copies (or re-encodes to AAC) the first audio stream of ``source`` into ``container``.

    Packets are pulled lazily by :meth:`mux_until`, so audio is interleaved with the video as it is written
    and nothing is held in memory. Times are shifted so the source's video start is time 0 (keeping
    lip sync) and audio starting at or after the end of the written video is dropped, so the audio ends
    at most one packet (tens of milliseconds) after the video.
    """

    def __init__(self, source: Path, container, copy: bool = True) -> None:
        self.input = av.open(str(source))
        try:
            self.in_stream = self.input.streams.audio[0]
            video = self.input.streams.video
            start = video[0].start_time if video and video[0].start_time is not None else 0
            self.offset = float(start * video[0].time_base) if video else 0.0
            codec = self.in_stream.codec_context.name
            self.copy = copy and codec in container.supported_codecs and _accepts_copy(source, container)
            if self.copy:
                self.stream = container.add_stream_from_template(self.in_stream)
            else:
                rate = self.in_stream.codec_context.sample_rate or 48000
                self.stream = container.add_stream("aac", rate=rate)
                self.stream.layout = "stereo" if self.in_stream.codec_context.channels > 1 else "mono"
                self.resampler = None
                self.samples = 0
            self.container = container
            self.packets = self.input.demux(self.in_stream)
            self.pending = None
            self.done = False
        except BaseException:
            self.input.close()
            raise

    def _time(self, packet) -> float | None:
        if packet.pts is None:
            return None
        return float(packet.pts * packet.time_base) - self.offset

    def _next_packet(self):
        """The next audio packet from the first video frame on, or None at the end of the source."""
        while not self.done:
            packet = next(self.packets, None)
            if packet is None:
                self.done = True
                return None
            if packet.size == 0:  # an empty packet flushes the demuxer
                continue
            start = self._time(packet)
            if start is None:
                continue
            duration = float(packet.duration * packet.time_base) if packet.duration else 0.0
            if start + duration <= 0:
                continue  # audio from before the first video frame
            return packet
        return None

    def mux_until(self, seconds: float) -> None:
        """Write the audio that starts before ``seconds`` (of output time).

        The first packet starting at or after ``seconds`` is kept for the next call, so the audio never
        runs more than one packet past the video written so far.
        """
        while True:
            packet = self.pending if self.pending is not None else self._next_packet()
            self.pending = None
            if packet is None:
                return
            if self._time(packet) >= seconds:
                self.pending = packet
                return
            if self.copy:
                shift = round(self.offset / packet.time_base)
                packet.pts -= shift
                if packet.dts is not None:
                    packet.dts -= shift
                packet.stream = self.stream
                self.container.mux(packet)
            else:
                self._encode(packet)

    def _encode(self, packet) -> None:
        if self.resampler is None:
            context = self.stream.codec_context
            self.resampler = av.AudioResampler(
                format=context.format or "fltp",
                layout=self.stream.layout,
                rate=context.sample_rate,
                frame_size=context.frame_size or 1024,
            )
        for frame in packet.decode():
            self._encode_frames(self.resampler.resample(frame))

    def _encode_frames(self, frames) -> None:
        for frame in frames:
            frame.pts = self.samples
            frame.time_base = Fraction(1, self.stream.codec_context.sample_rate)
            self.samples += frame.samples
            self.container.mux(self.stream.encode(frame))

    def finish(self, duration: float) -> None:
        """Write the audio that starts before ``duration`` seconds, flush the encoder and close the input."""
        try:
            self.mux_until(duration)
            if not self.copy:
                if self.resampler is not None:
                    self._encode_frames(self.resampler.resample(None))
                self.container.mux(self.stream.encode(None))
        finally:
            self.close()

    def close(self) -> None:
        self.input.close()


class VideoWriter:
    """Encode ``(H, W, 3)`` uint8 RGB frames into a video file, optionally with another file's audio.

    The file is written under a temporary name in the destination folder and renamed into place by
    :meth:`close`; :meth:`abort` (or leaving the ``with`` block by an exception) deletes it, so a failed
    or interrupted run never leaves a truncated video behind.

    Args:
        path: the output file; the container comes from its suffix (``.mp4``, ``.mov``, ``.mkv``, ``.avi``).
        fps: frame rate; a :class:`~fractions.Fraction` keeps rates such as 30000/1001 exact.
        audio_from: a media file whose first audio stream is copied (or re-encoded to AAC when the
            container cannot hold its codec); None or a file without audio writes no audio.
        copy_audio: copy the audio packets when the container accepts their codec (no quality loss);
            False always re-encodes to AAC.
        codec: video encoder; by default the first available of libx264, h264, mpeg4 (for ``.avi``,
            mpeg4 first: H.264 in AVI plays one frame late against its audio).
        crf: constant rate factor for x264, 0-51 (:data:`CRF_RANGE`; lower is better, 18 is visually
            lossless); mpeg4 is written at a fixed quantiser of about that quality.
        preset: x264 speed preset.

    Raises:
        FileNotFoundError: the destination folder does not exist.
        IsADirectoryError: ``path`` is a folder.
        ValueError: ``path``'s suffix names no container that holds the video codec (``.png``, none ...),
            or ``crf`` is outside :data:`CRF_RANGE`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: Fraction | float,
        audio_from: str | os.PathLike | None = None,
        copy_audio: bool = True,
        codec: str | None = None,
        crf: int = 18,
        preset: str = "medium",
    ) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"output folder not found: {self.path.parent}")
        if self.path.is_dir():
            raise IsADirectoryError(
                f"the output {self.path} is a folder; give a file name such as {self.path / 'out.mp4'}"
            )
        if not CRF_RANGE[0] <= crf <= CRF_RANGE[1]:  # x264 would fail at the first frame, with an errno
            raise ValueError(f"crf must be {CRF_RANGE[0]}-{CRF_RANGE[1]} (lower is better), got {crf}")
        self.fps = Fraction(fps).limit_denominator(100000)
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.codec = _video_codec(codec, self.path.suffix)
        self.options = {
            "libx264": {"crf": str(crf), "preset": preset},
            "mpeg4": _MPEG4_OPTIONS,
        }.get(self.codec, {})
        _remove_stale_partials(self.path.parent)
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.path.stem}.{os.getpid()}@{host_id()}.",
                suffix=f".partial{self.path.suffix}",
                dir=self.path.parent,
            )
        except OSError as error:  # name the user's path, not the temporary file's
            raise type(error)(f"cannot write {self.path}: {error.strerror or error}") from None
        os.close(fd)
        self.tmp_path = Path(tmp)
        os.chmod(self.tmp_path, 0o666 & ~_umask())  # mkstemp makes it private; the video is not
        self.frames = 0
        self._stream = None
        self._audio: _AudioTrack | None = None
        try:
            options = {"movflags": "+faststart"} if self.path.suffix.lower() in (".mp4", ".mov") else {}
            try:
                self._container = av.open(str(self.tmp_path), "w", options=options)
            except ValueError as error:  # PyAV: "Could not determine output format"
                raise ValueError(f"cannot write {self.path}: {self._unsuitable()}") from error
            if self.codec not in self._container.supported_codecs:
                raise ValueError(f"cannot write {self.path}: {self._unsuitable()}")
            if audio_from is not None and has_audio(audio_from):
                self._audio = _AudioTrack(Path(audio_from), self._container, copy_audio)
        except BaseException as error:
            self.abort()
            if isinstance(error, av.FFmpegError):
                raise ValueError(f"cannot write {self.path}: {error}") from error
            raise

    def _unsuitable(self) -> str:
        suffix = f"a {self.path.suffix} file" if self.path.suffix else "a name without a suffix"
        return f"{suffix} cannot hold {self.codec} video; use a video suffix such as .mp4"

    def _open_stream(self, height: int, width: int) -> None:
        if self.codec in ("libx264", "h264") and (height % 2 or width % 2):
            raise ValueError(f"H.264 with yuv420p needs even frame sizes, got {width}x{height}")
        stream = self._container.add_stream(self.codec, rate=self.fps, options=self.options)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = 1 / self.fps
        self._stream = stream

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame; every frame must have the first frame's size."""
        check_shape(frame, ["H", "W", 3], "frame", dtype=np.uint8)
        if self._stream is None:
            self._open_stream(*frame.shape[:2])
        elif frame.shape[:2] != (self._stream.height, self._stream.width):
            raise ValueError(
                f"frame {self.frames} is {frame.shape[1]}x{frame.shape[0]}, "
                f"the video is {self._stream.width}x{self._stream.height}"
            )
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.frames
        with self._naming_the_output():
            self._container.mux(self._stream.encode(video_frame))
            self.frames += 1
            if self._audio is not None:
                self._audio.mux_until(self.duration)

    @contextlib.contextmanager
    def _naming_the_output(self) -> Iterator[None]:
        """A failed write (a full disk) names the output, not the hidden temporary file."""
        try:
            yield
        except OSError as error:
            named = OSError(f"cannot write {self.path}: {error.strerror or error}")
            named.errno = error.errno
            raise named from None

    @property
    def duration(self) -> float:
        """Seconds of video written so far."""
        return self.frames / self.fps

    def close(self) -> Path:
        """Flush the encoders, write the remaining audio and move the file into place."""
        if self._container is None:
            return self.path
        try:
            if self._stream is None:
                raise ValueError(f"no frames were written to {self.path}")
            with self._naming_the_output():
                self._container.mux(self._stream.encode(None))
                if self._audio is not None:
                    self._audio.finish(self.duration)
                    self._audio = None
                self._container.close()
                self._container = None
                os.replace(self.tmp_path, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop writing and delete the temporary file; the destination is left untouched."""
        for closable in (self._audio, getattr(self, "_container", None)):
            if closable is not None:
                try:
                    closable.close()
                except Exception:  # noqa: BLE001 - cleaning up after an earlier error
                    pass
        self._audio = None
        self._container = None
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        if getattr(self, "_container", None) is not None:
            self.abort()
