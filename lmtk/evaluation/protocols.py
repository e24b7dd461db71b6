"""Evaluation protocols of the paper (§4.2): same-identity reconstruction and cross-identity transfer.

- :func:`evaluate_reconstruction` (§4.2 a, Table 1): each test video is reconstructed from its first
  frame (the source) with every frame as driving frame, by absolute transfer (eq. 11); every metric
  compares the generated frame with the real one.
- :func:`evaluate_transfer` (§4.2 b): seeded random pairs of different videos; the first frame of video
  A is animated by video B with relative transfer (eq. 12, B's first frame as the start frame). There is
  no ground truth, so L1/LPIPS are not defined; keypoint metrics compare the generated frames with the
  driving frames (does the motion follow?), AED compares them with the source image (is the identity
  kept?), FID compares generated with real (driving) videos.

Metrics are :class:`~lmtk.evaluation.metrics.base.FrameMetric` objects; the protocols feed them one data
sample per batch of frames and read per-video values from each video's slice of ``metric.results``.
Ground-truth keypoints of synthetic clips are read from their JSON (:func:`load_synthetic_keypoints`).

Example:
    >>> model = lmtk.load_model("work_dirs/lia_synthetic_m20/iter_1500.pth")  # doctest: +SKIP
    >>> result = evaluate_reconstruction(model, find_videos("data/synthetic_64/test"), [L1()])  # doctest: +SKIP
    >>> result.summary["l1"]  # doctest: +SKIP
    0.031
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..apis.animator import Animator
from ..apis.media import VideoWriter, fit_image
from ..datasets.video_reader import UnreadableVideoError, open_video
from ..functional.image_range import float_to_uint8, uint8_to_float
from .extractors.synthetic import load_synthetic_keypoints
from .metrics.base import FrameMetric

__all__ = [
    "PROTOCOLS",
    "EvaluationResult",
    "evaluate_reconstruction",
    "evaluate_transfer",
    "transfer_pairs",
]

PROTOCOLS = ("recon", "transfer")

GroundTruth = Callable[[Path, int], "np.ndarray | None"]


@dataclass
class EvaluationResult:
    """What a protocol measured.

    Attributes:
        protocol: ``"recon"`` or ``"transfer"``.
        summary: every value the metrics computed over all frames (``l1``, ``akd``, ``akd_frames`` ...);
            NaN where nothing could be measured.
        per_video: one row per video (or source/driving pair): ``video``, ``num_frames`` and each
            per-video metric.
        notes: metric name -> why it has no value (not applicable, nothing detected ...), or a caveat
            on the value it has (shown after it).
        metric_names: the main key of each metric, in order.
        unreadable: the videos (or pairs) left out because a video cannot be decoded: ``{"video": name,
            "reason": message}`` each; the others are measured as if those were not there.
    """

    protocol: str
    summary: dict[str, float] = field(default_factory=dict)
    per_video: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    metric_names: list[str] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes None."""
        return {
            "protocol": self.protocol,
            "metrics": {k: _json_number(v) for k, v in self.summary.items()},
            "notes": dict(self.notes),
            # transfer rows are source/driving pairs, not videos
            ("num_pairs" if self.protocol == "transfer" else "num_videos"): len(self.per_video),
            "num_frames": int(sum(row.get("num_frames", 0) for row in self.per_video)),
            "per_video": [{k: _json_number(v) for k, v in row.items()} for row in self.per_video],
            "unreadable": list(self.unreadable),
        }

    def write(self, work_dir: str | os.PathLike, extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
        """Write ``metrics.json`` and ``per_video.csv`` into ``work_dir``; returns their paths.

        Both are written to temporary files first and renamed together: a full disk leaves the folder as it
        was (no empty or cut file), with an ``OSError`` that names the file.
        """
        work_dir = Path(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        json_path, csv_path = work_dir / "metrics.json", work_dir / "per_video.csv"
        table = io.StringIO()
        columns = list(dict.fromkeys(k for row in self.per_video for k in row))
        writer = csv.DictWriter(table, fieldnames=columns or ["video"])
        writer.writeheader()
        for row in self.per_video:
            writer.writerow({k: "" if _json_number(v) is None else v for k, v in row.items()})
        texts = {
            json_path: json.dumps({**self.to_dict(), **(extra or {})}, indent=2) + "\n",
            csv_path: table.getvalue(),
        }
        temporary = {path: path.with_name(f".{path.name}.{os.getpid()}.tmp") for path in texts}
        try:
            for path, text in texts.items():
                try:
                    temporary[path].write_text(text, newline="")
                except OSError as error:
                    raise type(error)(f"cannot write {path}: {error.strerror or error}") from None
            for path in texts:
                os.replace(temporary[path], path)
        finally:
            for path in temporary.values():
                path.unlink(missing_ok=True)
        return json_path, csv_path

    def format_table(self) -> str:
        """A two-column text table: metric, value (or ``n/a (reason)``; a note on a value follows it)."""
        rows = []
        for name in self.metric_names:
            value = self.summary.get(name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                text = f"n/a ({self.notes.get(name, 'not measured')})"
            else:
                text = f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4e}"
                if name in self.notes:
                    text += f"  ({self.notes[name]})"
            rows.append((name.upper(), text))
        width = max([len(name) for name, _ in rows] + [6])
        lines = [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 10}"]
        lines += [f"{name:<{width}}  {text}" for name, text in rows]
        return "\n".join(lines)


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json_number(value.item())
    return value


class _FirstFrames:
    """The first ``count`` frames of a reader, with the reader interface."""

    def __init__(self, reader, count: int | None) -> None:
        self.reader = reader
        self.path = reader.path
        self.count = len(reader) if count is None else min(len(reader), count)

    def __len__(self) -> int:
        return self.count

    @property
    def fps(self) -> float:
        return self.reader.fps

    @property
    def size(self) -> tuple[int, int]:
        return self.reader.size

    def get_frames(self, indices) -> np.ndarray:
        return self.reader.get_frames(indices)


def _video_name(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def _generate(
    animator: Animator, source: np.ndarray, reader, mode: str, batch_size: int, save_path: Path | None
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Animate ``source`` by ``reader`` (start frame 0): ``(driving (B, S, S, 3) uint8, generated
    (B, 3, S, S))`` batches, the generated video also written to ``save_path`` if given."""
    frames = animator.animate(source, reader, mode=mode, start_frame=0, output="tensor", with_driving=True)
    with VideoWriter(save_path, fps=reader.fps) if save_path else contextlib.nullcontext() as writer:
        driving, generated = [], []
        for real, fake in frames:
            driving.append(real)
            generated.append(fake)
            if len(driving) == batch_size:
                batch = np.stack(driving), torch.stack(generated)
                driving, generated = [], []
                _write(writer, batch[1])
                yield batch
        if driving:
            batch = np.stack(driving), torch.stack(generated)
            _write(writer, batch[1])
            yield batch


def _write(writer: VideoWriter | None, frames: torch.Tensor) -> None:
    if writer is None:
        return
    images = float_to_uint8(frames)
    for image in images.permute(0, 2, 3, 1).cpu().numpy():
        writer.write(image)


def _as_tensor(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    return uint8_to_float(torch.from_numpy(frames).to(device).permute(0, 3, 1, 2))


def _check_metrics(metrics: Sequence[FrameMetric]) -> list[FrameMetric]:
    metrics = list(metrics)
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise ValueError(f"metrics must have distinct names, got {names}")
    for metric in metrics:
        metric.results.clear()
    return metrics


def _summarise(result: EvaluationResult, metrics: Sequence[FrameMetric]) -> None:
    num_frames = int(sum(row["num_frames"] for row in result.per_video))
    for metric in metrics:
        if metric.name in result.notes:
            continue
        values = metric.compute_metrics(metric.results)
        result.summary.update(values)
        if not math.isfinite(values.get(metric.name, float("nan"))):
            result.notes[metric.name] = metric.empty_reason
        elif caveat := metric.caveat(values, num_frames):
            result.notes[metric.name] = caveat
        metric.results.clear()


def _ground_truth(ground_truth: GroundTruth | None, path: Path, size: int, num_frames: int):
    truth = ground_truth(path, size) if ground_truth is not None else None
    if truth is not None and len(truth) < num_frames:
        raise ValueError(
            f"the ground-truth keypoints of {path} cover {len(truth)} frames, but {num_frames} are evaluated: "
            "the annotation does not belong to this video (for lmtk's synthetic clips, render the dataset "
            "again), or evaluate fewer frames (max_frames; --max-frames of tools/test.py)"
        )
    return truth


def _animator(model, batch_size: int, dtype: str) -> Animator:
    device = next(model.parameters()).device
    return Animator(model, device=device, dtype=dtype, batch_size=batch_size, chunk_size=max(batch_size, 32))


@torch.inference_mode()
def evaluate_reconstruction(
    model,
    videos: Sequence[str | os.PathLike],
    metrics: Sequence[FrameMetric],
    batch_size: int = 16,
    max_frames: int | None = None,
    skip_source_frame: bool = False,
    ground_truth: GroundTruth | None = load_synthetic_keypoints,
    save_dir: str | os.PathLike | None = None,
    progress: bool = False,
    dtype: str = "float32",
) -> EvaluationResult:
    """Same-identity reconstruction (§4.2 a): first frame as source, every frame as driving (absolute).

    Args:
        model: an LIA model (``lmtk.load_model``); it runs on its own device.
        videos: video files or frame folders.
        metrics: metric objects; each compares generated and real frames.
        batch_size: frames per network call and per metric sample.
        max_frames: frames per video (None: all).
        skip_source_frame: leave frame 0 (the source itself) out of the metrics, as the paper's text
            reads ("the remaining frames"); FOMM-style evaluations keep it (the default).
        ground_truth: ``(video_path, size) -> (T, K, 2) | None``, the real frames' keypoints.
        save_dir: write each generated video there as ``<name>.mp4``.
        progress: show a progress bar.
        dtype: the network's autocast dtype (``"float32"``, ``"bfloat16"`` or ``"float16"``); the
            metrics always compute in float32.

    A video that cannot be decoded is left out and listed in ``result.unreadable``, as training skips
    it; :class:`~lmtk.datasets.video_reader.UnreadableVideoError` only when none can be read.
    """
    metrics = _check_metrics(metrics)
    result = EvaluationResult("recon", metric_names=[m.name for m in metrics])
    animator = _animator(model, batch_size, dtype)
    size = model.size
    for path in tqdm([Path(v) for v in videos], desc="recon", unit="video", disable=not progress):
        with _skipped_if_unreadable(result, metrics, _video_name(path)):
            reader = _FirstFrames(open_video(path), max_frames)
            if len(reader) == 0:
                raise UnreadableVideoError(f"{path} has no frames")
            name = _video_name(path)
            truth = _ground_truth(ground_truth, path, size, len(reader))
            source = fit_image(reader.get_frames([0])[0], size)
            starts = [len(m.results) for m in metrics]
            save_path = Path(save_dir) / f"{name}.mp4" if save_dir else None
            index = 0
            for driving, generated in _generate(animator, source, reader, "absolute", batch_size, save_path):
                first = 1 if skip_source_frame and index == 0 else 0
                sample = {
                    "fake": generated[first:],
                    "real": _as_tensor(driving[first:], generated.device),
                    "video": name,
                }
                if truth is not None:
                    sample["keypoints"] = truth[index + first : index + len(driving)]
                if len(sample["fake"]):
                    for metric in metrics:
                        metric.process(None, [sample])
                index += len(driving)
            counted = index - (1 if skip_source_frame else 0)
            result.per_video.append({"video": name, "num_frames": counted, **_per_video(metrics, starts)})
    _check_something_read(result, len(videos), "videos")
    _summarise(result, metrics)
    return result


@contextlib.contextmanager
def _skipped_if_unreadable(
    result: EvaluationResult, metrics: Sequence[FrameMetric], name: str
) -> Iterator[None]:
    """A video that cannot be decoded is left out (noted in ``result.unreadable``), as training skips it:
    the other videos' work is kept. What the metrics took of it before the error is taken back."""
    starts = [len(m.results) for m in metrics]
    try:
        yield
    except UnreadableVideoError as error:
        for metric, start in zip(metrics, starts):
            del metric.results[start:]
        result.unreadable.append({"video": name, "reason": " ".join(str(error).split())})


def _check_something_read(result: EvaluationResult, count: int, unit: str) -> None:
    if result.unreadable and not result.per_video:
        raise UnreadableVideoError(
            f"none of the {count} {unit} could be read (first: {result.unreadable[0]['reason']})"
        )


def _per_video(metrics: Sequence[FrameMetric], starts: Sequence[int]) -> dict[str, float]:
    row = {}
    for metric, start in zip(metrics, starts):
        if metric.per_video and start is not None:
            row[metric.name] = metric.compute_metrics(metric.results[start:])[metric.name]
    return row


def transfer_pairs(num_videos: int, num_pairs: int | None = None, seed: int = 0) -> list[tuple[int, int]]:
    """Seeded random distinct ``(source, driving)`` video indices with source != driving.

    Sources go through the videos in a random order (each video is a source once before any is used
    twice); each source's driving videos are drawn without replacement among the others, so no pair
    repeats. ``num_pairs`` None gives one pair per video. The same arguments give the same pairs.

    Raises:
        ValueError: fewer than 2 videos, or more pairs asked for than the ``n·(n-1)`` that exist.
    """
    if num_videos < 2:
        raise ValueError(f"cross-identity transfer needs at least 2 videos, got {num_videos}")
    available = num_videos * (num_videos - 1)
    count = num_videos if num_pairs is None else num_pairs
    if count > available:
        raise ValueError(
            f"{count} transfer pairs asked for, but {num_videos} videos give only {available} distinct "
            f"(source, driving) pairs: ask for at most {available} or give more videos"
        )
    rng = np.random.default_rng(seed)
    drivings: dict[int, list[int]] = {}  # each source's unused driving videos, next one last
    pairs: list[tuple[int, int]] = []
    # everything is drawn when first needed, so asking for more pairs only appends to the list
    while len(pairs) < count:
        for source in rng.permutation(num_videos).tolist()[: count - len(pairs)]:
            if source not in drivings:
                others = rng.permutation(num_videos - 1).tolist()
                drivings[source] = [i + (i >= source) for i in reversed(others)]
            pairs.append((source, drivings[source].pop()))
    return pairs


@torch.inference_mode()
def evaluate_transfer(
    model,
    videos: Sequence[str | os.PathLike],
    metrics: Sequence[FrameMetric],
    num_pairs: int | None = None,
    seed: int = 0,
    batch_size: int = 16,
    max_frames: int | None = None,
    ground_truth: GroundTruth | None = load_synthetic_keypoints,
    save_dir: str | os.PathLike | None = None,
    progress: bool = False,
    dtype: str = "float32",
) -> EvaluationResult:
    """Cross-identity transfer (§4.2 b): the first frame of video A animated by video B (relative).

    Args:
        model, videos, metrics, batch_size, max_frames, ground_truth, progress, dtype: as in
            :func:`evaluate_reconstruction`; ``ground_truth`` gives the driving frames' keypoints.
        num_pairs, seed: the random pairs (:func:`transfer_pairs`).
        save_dir: write each generated video there as ``<A>_by_<B>.mp4``.

    Metrics whose ``transfer_reference`` is None (L1, LPIPS) are reported as not applicable. A pair with a
    video that cannot be decoded is left out and listed in ``result.unreadable``.
    """
    metrics = _check_metrics(metrics)
    result = EvaluationResult("transfer", metric_names=[m.name for m in metrics])
    for metric in metrics:
        if metric.transfer_reference is None:
            result.notes[metric.name] = "needs ground truth, which cross-identity transfer does not have"
    active = [m for m in metrics if m.transfer_reference is not None]
    paths = [Path(v) for v in videos]
    animator = _animator(model, batch_size, dtype)
    size = model.size
    pairs = transfer_pairs(len(paths), num_pairs, seed)
    for a, b in tqdm(pairs, desc="transfer", disable=not progress):
        names = _video_name(paths[a]), _video_name(paths[b])
        name = f"{names[0]}_by_{names[1]}"
        with _skipped_if_unreadable(result, active, name):
            source = fit_image(open_video(paths[a]).get_frames([0])[0], size)
            reader = _FirstFrames(open_video(paths[b]), max_frames)
            truth = _ground_truth(ground_truth, paths[b], size, len(reader))
            starts = [len(m.results) for m in active]
            save_path = Path(save_dir) / f"{name}.mp4" if save_dir else None
            index = 0
            for driving, generated in _generate(animator, source, reader, "relative", batch_size, save_path):
                references = {
                    "driving": _as_tensor(driving, generated.device),
                    "source": _as_tensor(source[None], generated.device),
                }
                for metric in active:
                    sample = {"fake": generated, "real": references[metric.transfer_reference], "video": name}
                    if truth is not None and metric.transfer_reference == "driving":
                        sample["keypoints"] = truth[index : index + len(driving)]
                    metric.process(None, [sample])
                index += len(driving)
            row = {"video": name, "source": names[0], "driving": names[1], "num_frames": index}
            result.per_video.append({**row, **_per_video(active, starts)})
    _check_something_read(result, len(pairs), "pairs")
    _summarise(result, metrics)
    return result
