"""Jitter of an animation: how much its motion magnitudes and its frames shake, with and without smoothing.

:func:`video_jitter` animates a video by its own first frame (relative transfer, as a reconstruction) and
measures, streaming, with :func:`lmtk.apis.smoothing.jitter` (the second difference, which smooth motion
does not raise) and :func:`~lmtk.apis.smoothing.frame_change` (the first difference, motion included):

- the driving motion magnitudes ``A_{r->t}`` and the output frames as they are;
- with a smoothing filter, the same after it, and the lag in frames it costs the magnitudes
  (:func:`~lmtk.apis.smoothing.lag` of the smoothed against the raw ones).

Example:
    >>> report = video_jitter(animator, "driving.mp4", OneEuroFilter())  # doctest: +SKIP
    >>> report["output_jitter"], report["smoothed_output_jitter"], report["smoothing_lag_frames"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..apis.animator import Animator, _frames_to_tensor
from ..apis.smoothing import OneEuroFilter, frame_change, jitter, lag
from ..datasets.video_reader import ArrayVideo

__all__ = ["RunningJitter", "video_jitter"]


class RunningJitter:
    """:func:`jitter` and :func:`frame_change` of frames that arrive one at a time (two kept)."""

    def __init__(self) -> None:
        self._last: list[torch.Tensor] = []
        self._change = self._second = 0.0
        self._changes = self._seconds = 0

    def update(self, frame: torch.Tensor) -> None:
        frame = frame.double()
        if self._last:
            self._change += float((frame - self._last[-1]).abs().mean())
            self._changes += 1
        if len(self._last) == 2:
            self._second += float((frame - 2 * self._last[1] + self._last[0]).abs().mean())
            self._seconds += 1
        self._last = [*self._last[-1:], frame]

    @property
    def jitter(self) -> float:
        return self._second / self._seconds if self._seconds else 0.0

    @property
    def change(self) -> float:
        return self._change / self._changes if self._changes else 0.0


def _outputs(animator: Animator, source, reader, smooth) -> RunningJitter:
    measure = RunningJitter()
    for frame in animator.animate(source, reader, output="tensor", smooth=smooth):
        measure.update(frame)
    return measure


def video_jitter(
    animator: Animator, driving, smoother: OneEuroFilter | None = None, max_frames: int | None = None
) -> dict:
    """Jitter of the magnitudes and outputs of ``driving`` animating its own first frame.

    Args:
        animator: the animator (either backend).
        driving: a video file, frame folder, frame array or reader.
        smoother: also measure with this filter (at the video's frame rate); None: raw only.
        max_frames: the first frames only.
    """
    reader = animator.open_driving(driving)
    count = len(reader) if max_frames is None else min(len(reader), max_frames)
    if count < len(reader):
        reader = ArrayVideo(np.stack(reader.get_frames(range(count))), fps=reader.fps)
    source = animator.encode_source(reader.get_frames([0])[0])
    magnitudes = []
    with torch.inference_mode():
        for frames in animator.driving_batches(reader):
            magnitudes.append(animator._motion(_frames_to_tensor(frames, animator.device))[0].float().cpu())
    magnitudes = torch.cat(magnitudes)
    raw = _outputs(animator, source, reader, False)
    report = {
        "frames": count,
        "magnitude_jitter": jitter(magnitudes),
        "magnitude_change": frame_change(magnitudes),
        "output_jitter": raw.jitter,
        "output_change": raw.change,
    }
    if smoother is not None:
        smoother = dataclasses.replace(smoother, fps=reader.fps or smoother.fps)
        smoothed_magnitudes = dataclasses.replace(smoother)(magnitudes)
        smoothed = _outputs(animator, source, reader, smoother)
        report.update(
            smoothed_magnitude_jitter=jitter(smoothed_magnitudes),
            smoothed_magnitude_change=frame_change(smoothed_magnitudes),
            smoothed_output_jitter=smoothed.jitter,
            smoothed_output_change=smoothed.change,
            smoothing_lag_frames=lag(smoothed_magnitudes, magnitudes, max_shift=min(10, count - 1))
            if count > 1
            else 0,
            smoothing={k: v for k, v in dataclasses.asdict(smoother).items() if not k.startswith("_")},
        )
    return report
