"""One-Euro smoothing of motion magnitudes: less jitter for a bounded lag, measured."""

import math

import pytest
import torch

from lmtk.apis.smoothing import OneEuroFilter, frame_change, jitter, lag

FPS = 25.0


def _noisy_motion(frames: int = 250, magnitudes: int = 20, noise: float = 0.1, seed: int = 0):
    """Head motion (0.1-0.5 Hz sines, amplitude 1) plus white per-frame noise."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(frames, dtype=torch.float64)[:, None] / FPS
    frequency = 0.1 + 0.4 * torch.rand(1, magnitudes, generator=generator, dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(1, magnitudes, generator=generator, dtype=torch.float64)
    clean = torch.sin(2 * math.pi * frequency * t + phase)
    return clean, clean + noise * torch.randn(clean.shape, generator=generator, dtype=torch.float64)


def test_default_filter_lowers_jitter_fourfold_within_two_frames_of_lag():
    clean, noisy = _noisy_motion()
    smoothed = OneEuroFilter(fps=FPS)(noisy)
    assert jitter(smoothed) < jitter(noisy) / 4
    assert lag(smoothed, clean) <= 2
    assert lag(noisy, clean) == 0  # the measure itself: noise alone lags nothing
    assert jitter(clean) < jitter(noisy) / 20  # and smooth motion is not jitter


def test_state_carries_across_batches():
    _, noisy = _noisy_motion(frames=30)
    whole = OneEuroFilter()(noisy)
    pieces = OneEuroFilter()
    split = torch.cat([pieces(noisy[:7]), pieces(noisy[7:8]), pieces(noisy[8:])])
    torch.testing.assert_close(split, whole, rtol=0, atol=0)


def test_beta_trades_jitter_for_lag_on_fast_motion():
    t = torch.arange(200, dtype=torch.float64)[:, None] / FPS
    fast = torch.sin(2 * math.pi * 1.5 * t)
    slow_filter = OneEuroFilter(min_cutoff=0.5, beta=0.0)(fast)
    adaptive = OneEuroFilter(min_cutoff=0.5, beta=2.0)(fast)
    assert lag(adaptive, fast) < lag(slow_filter, fast)


def test_lag_finds_a_known_delay():
    clean, _ = _noisy_motion(frames=100)
    delayed = torch.cat([clean[:3], clean[:-3]])
    assert lag(delayed, clean) == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(min_cutoff=0), "min_cutoff must be a positive"),
        (dict(beta=-1), "beta must be"),
        (dict(fps=math.nan), "fps"),
    ],
)
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OneEuroFilter(**kwargs)


def test_frame_change_counts_motion_and_jitter_counts_noise():
    steady = torch.arange(10, dtype=torch.float64)[:, None]  # one unit per frame, no noise
    assert frame_change(steady) == 1.0 and jitter(steady) == 0.0
