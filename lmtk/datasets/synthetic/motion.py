"""Smooth random motion processes that animate a synthetic talking face.

Every factor is a time series sampled at the frame times of a clip. Head pose, gaze and the talking
envelope are sums of a few sinusoids with random frequencies, phases and amplitudes (smooth at any frame
rate, since frequencies are in Hz); blinks are sparse asymmetric bumps (fast closing, slower opening) at
Poisson times, as real blinks are events rather than oscillations.

Factors and units:

- ``tx``, ``ty``: head offset from its rest position, fractions of the image size (y down).
- ``rotation``: in-plane roll in degrees, positive turns the head clockwise on screen.
- ``scale``: multiplicative head size.
- ``nod``: pitch in [-1, 1], positive looks down (:data:`MAX_NOD_DEGREES` at 1).
- ``turn``: yaw in [-1, 1], positive turns the face towards the image right (:data:`MAX_TURN_DEGREES`).
- ``blink``: eyelid closure in [0, 1], 1 is closed.
- ``gaze_x``, ``gaze_y``: pupil offset in [-1, 1] of its free range, positive right / down.
- ``mouth_open``: jaw opening in [0, 1].

Example:
    >>> motion = sample_motion(np.random.default_rng(0), num_frames=8, fps=25)
    >>> sorted(motion) == sorted(MOTION_FACTORS), motion["blink"].shape
    (True, (8,))
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MAX_NOD_DEGREES",
    "MAX_TURN_DEGREES",
    "MOTION_FACTORS",
    "MOTION_RANGES",
    "blink_track",
    "sample_motion",
    "smooth_track",
]

MOTION_FACTORS: tuple[str, ...] = (
    "tx",
    "ty",
    "rotation",
    "scale",
    "nod",
    "turn",
    "blink",
    "gaze_x",
    "gaze_y",
    "mouth_open",
)

# The values every factor is clipped to; the renderer keeps all features visible inside these.
MOTION_RANGES: dict[str, tuple[float, float]] = {
    "tx": (-0.15, 0.15),
    "ty": (-0.12, 0.12),
    "rotation": (-25.0, 25.0),
    "scale": (0.78, 1.25),
    "nod": (-1.0, 1.0),
    "turn": (-1.0, 1.0),
    "blink": (0.0, 1.0),
    "gaze_x": (-1.0, 1.0),
    "gaze_y": (-1.0, 1.0),
    "mouth_open": (0.0, 1.0),
}

MAX_NOD_DEGREES = 20.0
MAX_TURN_DEGREES = 30.0

_HEAD_BAND = (0.25, 0.8)  # Hz: slow enough to stay smooth at 25 fps, fast enough to move within a second
_GAZE_BAND = (0.2, 1.0)
_SYLLABLE_BAND = (1.5, 4.0)  # the syllable rate of speech
_ENVELOPE_BAND = (0.1, 0.4)


def smooth_track(
    rng: np.random.Generator,
    times: np.ndarray,
    band: tuple[float, float],
    num_components: int = 3,
) -> np.ndarray:
    """A smooth random signal in [-1, 1]: a normalised sum of sinusoids with frequencies in ``band`` Hz.

    Args:
        rng: the random generator (consumed).
        times: (T,) sample times in seconds.
        band: (low, high) frequency range in Hz.
        num_components: number of sinusoids.

    Returns:
        (T,) float64 array in [-1, 1].
    """
    freqs = rng.uniform(band[0], band[1], num_components)
    phases = rng.uniform(0.0, 2.0 * np.pi, num_components)
    amps = rng.uniform(0.3, 1.0, num_components)
    waves = np.sin(2.0 * np.pi * freqs[:, None] * times[None, :] + phases[:, None])
    return (amps[:, None] * waves).sum(0) / amps.sum()


def blink_track(rng: np.random.Generator, times: np.ndarray, rate: float) -> np.ndarray:
    """Eyelid closure in [0, 1] with blinks at Poisson times (``rate`` blinks per second).

    Blinks may start before the first or end after the last frame, so a clip can open mid-blink.

    Args:
        rng: the random generator (consumed).
        times: (T,) sample times in seconds.
        rate: mean number of blinks per second.

    Returns:
        (T,) float64 array in [0, 1].
    """
    margin = 0.3
    start, stop = float(times[0]) - margin, float(times[-1]) + margin
    count = int(rng.poisson(rate * (stop - start)))
    onsets = rng.uniform(start, stop, count)
    closure = np.zeros_like(times, dtype=np.float64)
    for onset in onsets:
        # Closing takes about 50 ms, opening about twice as long.
        width = np.where(times < onset, 0.05, 0.1)
        closure = np.maximum(closure, np.exp(-0.5 * ((times - onset) / width) ** 2))
    return closure


def sample_motion(rng: np.random.Generator, num_frames: int, fps: float = 25.0) -> dict[str, np.ndarray]:
    """Sample every motion factor of one clip.

    Args:
        rng: the random generator (consumed in a fixed order, so a seed fixes the clip).
        num_frames: number of frames T (at least 1).
        fps: frame rate; frequencies are in Hz, so the motion per second does not depend on it.

    Returns:
        dict factor name -> (T,) float32 array, keys in :data:`MOTION_FACTORS` order, values clipped to
        :data:`MOTION_RANGES`.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    times = np.arange(num_frames, dtype=np.float64) / fps

    def head(bias: float, amplitude: float) -> np.ndarray:
        return rng.uniform(-bias, bias) + amplitude * smooth_track(rng, times, _HEAD_BAND)

    # Head motion is larger than a calm speaker's: within a one-second clip it must move the image
    # more than the eyes and mouth do, so that copying the source frame is a poor answer and a model
    # has to learn the motion to reconstruct a clip.
    motion = {
        "tx": head(0.03, 0.09),
        "ty": head(0.02, 0.05),
        "rotation": head(4.0, 12.0),
        "scale": np.exp(head(0.05, 0.09)),
        "nod": head(0.2, 0.6),
        "turn": head(0.25, 0.75),
    }
    squint = rng.uniform(0.0, 0.15)
    motion["blink"] = squint + (1.0 - squint) * blink_track(rng, times, rate=rng.uniform(0.3, 0.9))
    motion["gaze_x"] = 0.7 * smooth_track(rng, times, _GAZE_BAND)
    motion["gaze_y"] = 0.5 * smooth_track(rng, times, _GAZE_BAND)
    envelope = 0.55 + 0.6 * smooth_track(rng, times, _ENVELOPE_BAND, num_components=2)
    syllables = 0.5 + 0.5 * smooth_track(rng, times, _SYLLABLE_BAND)
    loudness = rng.uniform(0.6, 1.0)
    motion["mouth_open"] = loudness * np.clip(envelope, 0.0, 1.0) * (1.3 * syllables - 0.15)
    return {name: np.clip(motion[name], *MOTION_RANGES[name]).astype(np.float32) for name in MOTION_FACTORS}
