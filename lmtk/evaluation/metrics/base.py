"""Shared plumbing of lmtk's metrics: the data-sample format and a :class:`BaseMetric` base class.

A data sample is a mapping with

- ``fake``: generated frames, a ``(3, H, W)`` or ``(T, 3, H, W)`` tensor in [-1, 1], or an
  ``(H, W, 3)`` / ``(T, H, W, 3)`` uint8 array;
- ``real``: what the metric compares with, same layout (one frame is broadcast over ``T``);
- optionally ``video`` (a name, for per-video results) and ``keypoints`` (ground truth of the real
  frames, ``(K, 2)`` or ``(T, K, 2)`` pixels; see :class:`~lmtk.evaluation.extractors.SyntheticKeypoints`).

``LIA.forward(mode="predict")`` returns such samples, so the metrics plug into an mmengine ``Evaluator``.
Every metric appends one result per sample to ``self.results``, holding plain per-frame entries, which
makes :meth:`FrameMetric.compute_metrics` work on any slice of them: the protocols get per-video values
by passing one video's results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from ...functional.checks import check_shape
from ...functional.image_range import float_to_uint8, uint8_to_float

__all__ = ["FrameMetric", "mean_or_nan", "paired_frames", "to_frames", "to_uint8_frames"]


def to_frames(value: Any) -> torch.Tensor:
    """Frames as a float ``(N, 3, H, W)`` tensor in [-1, 1] (kept on its device)."""
    if isinstance(value, np.ndarray):
        array = value[None] if value.ndim == 3 else value
        check_shape(array, ["N", "H", "W", 3], "frames", dtype=np.uint8)
        value = uint8_to_float(torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2))
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected a tensor or uint8 array of frames, got {type(value).__name__}")
    if value.dim() == 3:
        value = value.unsqueeze(0)
    check_shape(value, ["N", 3, "H", "W"], "frames")
    return value.float()


def to_uint8_frames(frames: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` frames in [-1, 1] as ``(N, H, W, 3)`` uint8 on the CPU (clamped, rounded)."""
    frames = float_to_uint8(frames)
    return np.ascontiguousarray(frames.permute(0, 2, 3, 1).cpu().numpy())


def paired_frames(sample: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fake, real)`` of a data sample, each ``(N, 3, H, W)``; a single real frame is broadcast."""
    for key in ("fake", "real"):
        if key not in sample:
            raise KeyError(f"a data sample needs '{key}' frames; got keys {sorted(sample)}")
    fake, real = to_frames(sample["fake"]), to_frames(sample["real"])
    if real.shape[0] == 1 and fake.shape[0] > 1:
        real = real.expand(fake.shape[0], -1, -1, -1)
    if fake.shape != real.shape:
        raise ValueError(f"fake and real frames differ: {tuple(fake.shape)} vs {tuple(real.shape)}")
    return fake, real.to(fake.device)


class FrameMetric(BaseMetric):
    """A metric over pairs of generated and real frames; subclasses implement two methods.

    - :meth:`evaluate_frames` turns one sample's ``(N, 3, H, W)`` fake and real frames into result
      entries (plain dicts, usually one per frame);
    - :meth:`reduce` turns entries into ``{name: value, ...}``; ``name`` is :attr:`name` and its value is
      NaN when no entry could be measured (:attr:`empty_reason` says why).

    ``self.results`` holds one ``{"video", "frames": entries}`` per sample (mmengine collects results
    per sample across processes), and :meth:`compute_metrics` works on any slice of it.

    Class attributes the protocols read:
        name: the key of the main value.
        per_video: whether a value per video means something (not for FID).
        transfer_reference: in cross-identity transfer (no ground truth), what ``real`` is: the driving
            frames (``"driving"``), the source image (``"source"``), or None when the metric needs
            ground truth.

    :meth:`caveat` says when a value rests on fewer frames or samples than were given.
    """

    default_prefix: str | None = ""  # keys stay "l1", "lpips" ... in mmengine's evaluator
    name: str = "metric"
    per_video: bool = True
    transfer_reference: str | None = "driving"
    empty_reason: str = "no frames were evaluated"

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        # one result per sample, as mmengine's collection across processes expects
        for sample in data_samples:
            fake, real = paired_frames(sample)
            entries = self.evaluate_frames(fake, real, sample)
            self.results.append({"video": str(sample.get("video", "")), "frames": entries})

    def compute_metrics(self, results: list) -> dict[str, float]:
        return self.reduce([entry for result in results for entry in result["frames"]])

    def evaluate_frames(
        self, fake: torch.Tensor, real: torch.Tensor, sample: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Result entries (plain dicts) of one sample's ``(N, 3, H, W)`` fake and real frames."""
        raise NotImplementedError

    def reduce(self, entries: list[dict[str, Any]]) -> dict[str, float]:
        """``{name: value, ...}`` from the entries of any number of samples."""
        raise NotImplementedError

    def caveat(self, values: Mapping[str, float], num_frames: int) -> str | None:
        """A note for a measured value that rests on less than it seems, or None.

        Args:
            values: what :meth:`reduce` returned over an evaluation.
            num_frames: the frames that evaluation gave the metric.

        The default names the share of frames a value comes from when ``{name}_frames`` says some
        frames could not be measured (no face or keypoints found there, say).
        """
        counted = values.get(f"{self.name}_frames")
        if counted is not None and 0 < counted < num_frames:
            return f"from {int(counted)} of {num_frames} frames"
        return None


def mean_or_nan(values: Sequence[float]) -> float:
    """The mean of ``values``, NaN when there are none."""
    return float(np.mean(values)) if len(values) else float("nan")
