"""Motion smoothing: a One-Euro filter on the motion magnitudes, and the jitter and lag it is judged by.

A driving video's motion magnitudes ``A_{r->t}`` carry frame-to-frame noise (detector-free, but a
face's texture, compression and lighting still move the encoder a little), which the output shows as
jitter. The One-Euro filter (Casiez et al., CHI 2012) is a low-pass filter whose cutoff rises with the
speed of the signal: still poses are smoothed hard, fast motion passes with little lag. It needs no
look-ahead, so it runs on streams.

Per frame, with ``Te = 1 / fps``, ``alpha(fc) = 1 / (1 + 1 / (2 pi fc Te))``:

- ``dx_t = alpha(d_cutoff) (x_t - x̂_{t-1}) / Te + (1 - alpha(d_cutoff)) dx_{t-1}`` (the smoothed speed);
- ``fc_t = min_cutoff + beta |dx_t|``;
- ``x̂_t = alpha(fc_t) x_t + (1 - alpha(fc_t)) x̂_{t-1}``, each magnitude on its own.

Example:
    >>> smoother = OneEuroFilter(min_cutoff=1.0, beta=0.0, fps=25)
    >>> values = torch.tensor([[0.0], [1.0], [1.0]])
    >>> smoother(values).squeeze(1)  # the first frame passes; then a step is followed gradually
    tensor([0.0000, 0.2008, 0.3614])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..functional.checks import check_shape

__all__ = ["OneEuroFilter", "frame_change", "jitter", "lag"]


@dataclass
class OneEuroFilter:
    """One-Euro filter over ``(B, M)`` rows that arrive in frame order; state carries across calls.

    Args:
        min_cutoff: the cutoff (Hz) of a still signal: lower smooths more and lags more (default 1.0).
        beta: how fast the cutoff rises with the signal's speed (per magnitude unit per second): higher
            follows fast motion with less lag, and lets more of its jitter through (default 0.3).
        d_cutoff: the cutoff (Hz) of the speed estimate (default 1.0).
        fps: the frame rate the cutoffs are in (default 25; tools pass the driving video's).
    """

    min_cutoff: float = 1.0
    beta: float = 0.3
    d_cutoff: float = 1.0
    fps: float = 25.0
    _value: torch.Tensor | None = field(default=None, init=False, repr=False)
    _speed: torch.Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "d_cutoff", "fps"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not (isinstance(self.beta, int | float) and math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a number >= 0, got {self.beta!r}")

    def reset(self) -> None:
        """Forget the past: the next frame passes unchanged (a new video or stream)."""
        self._value = self._speed = None

    def _alpha(self, cutoff: torch.Tensor | float) -> torch.Tensor | float:
        return 1.0 / (1.0 + self.fps / (2 * math.pi * cutoff))

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        """The smoothed ``(B, M)`` values, row after row (float32 or wider)."""
        check_shape(values, ["B", "M"], "values")
        rows = []
        for row in values.float():
            if self._value is None:
                self._value, self._speed = row, torch.zeros_like(row)
            else:
                speed = (row - self._value) * self.fps
                a = self._alpha(self.d_cutoff)
                self._speed = a * speed + (1 - a) * self._speed
                alpha = self._alpha(self.min_cutoff + self.beta * self._speed.abs())
                self._value = alpha * row + (1 - alpha) * self._value
            rows.append(self._value)
        return torch.stack(rows).to(values.dtype) if rows else values


def frame_change(sequence: torch.Tensor) -> float:
    """Mean absolute frame-to-frame change of ``(N, ...)`` values: motion and jitter together."""
    sequence = torch.as_tensor(sequence).double()
    if sequence.shape[0] < 2:
        return 0.0
    return float((sequence[1:] - sequence[:-1]).abs().mean())


def jitter(sequence: torch.Tensor) -> float:
    """Mean absolute change of the frame-to-frame change of ``(N, ...)`` values (magnitudes, or frames in
    [-1, 1]): ``mean |x_{t+1} - 2 x_t + x_{t-1}|``.

    Smooth motion changes steadily from frame to frame, so its second difference is near 0 (a sine of
    frequency f and amplitude a gives at most ``a (2 pi f / fps)^2``), while independent per-frame noise
    of deviation s gives ``sqrt(6) s`` on average: this separates jitter from motion, where the plain
    frame-to-frame change (:func:`frame_change`) counts both.
    """
    sequence = torch.as_tensor(sequence).double()
    if sequence.shape[0] < 3:
        return 0.0
    return float((sequence[2:] - 2 * sequence[1:-1] + sequence[:-2]).abs().mean())


def lag(sequence: torch.Tensor, reference: torch.Tensor, max_shift: int = 10) -> int:
    """The delay in frames (0 to ``max_shift``) that best aligns ``sequence`` with ``reference``:
    the shift ``k`` minimising the mean absolute difference of ``sequence[t]`` and ``reference[t - k]``."""
    sequence, reference = torch.as_tensor(sequence).double(), torch.as_tensor(reference).double()
    count = sequence.shape[0]
    if reference.shape[0] != count or count <= max_shift:
        raise ValueError(f"sequence and reference must have the same length, more than {max_shift} frames")
    errors = [float((sequence[k:] - reference[: count - k]).abs().mean()) for k in range(max_shift + 1)]
    return min(range(max_shift + 1), key=errors.__getitem__)
