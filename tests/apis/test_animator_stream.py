"""Animator.stream: frames in from any iterator, results out one by one, the same as the file path."""

import numpy as np
import pytest
import torch

from lmtk.apis import Animator
from lmtk.apis.smoothing import OneEuroFilter, jitter

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clip():
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    return source, rng.integers(0, 256, (11, 48, 40, 3), dtype=np.uint8)


class Camera:
    """A generator of frames that records how many it has handed out."""

    def __init__(self, frames):
        self.frames, self.read = frames, 0

    def __iter__(self):
        for frame in self.frames:
            self.read += 1
            yield frame


@pytest.mark.parametrize("micro_batch", [1, 4])
@pytest.mark.parametrize("mode", ["relative", "absolute"])
def test_stream_equals_the_file_path(model, clip, micro_batch, mode):
    source, frames = clip
    animator = Animator(model, batch_size=micro_batch)
    camera = Camera(frames)
    streamed = []
    for result in animator.stream(source, camera, mode=mode, micro_batch=micro_batch):
        streamed.append(result)
        # results come as soon as their micro-batch is in: never more than one micro-batch read ahead
        assert camera.read - len(streamed) < micro_batch
    assert len(streamed) == len(frames)
    expected = list(animator.animate(source, frames, mode=mode, start_frame=0))
    for got, want in zip(streamed, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_given_start_frame_and_tensor_frames(model, clip):
    source, frames = clip
    animator = Animator(model, batch_size=1)
    start = 5
    expected = animator.animate_frames(source, frames, driving_first=start, output="tensor")
    tensors = animator._driving_frames(frames)  # the frames at model size, as a camera loop might pass them
    streamed = animator.stream(source, iter(tensors), start_frame=frames[start], output="tensor")
    torch.testing.assert_close(torch.stack(list(streamed)), expected, rtol=0, atol=1e-6)


def test_stream_refuses_bad_frames_and_options(model, clip):
    source, frames = clip
    animator = Animator(model)
    with pytest.raises(ValueError, match="micro_batch must be a positive integer"):
        animator.stream(source, frames, micro_batch=0)
    with pytest.raises(ValueError, match="a streamed frame must be"):
        list(animator.stream(source, [frames[0].astype(np.float32)]))
    assert list(animator.stream(source, iter([]))) == []


def test_stream_smoothing_lowers_output_jitter(model, clip):
    """A still face with sensor noise: smoothing the magnitudes steadies the output."""
    source, frames = clip
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 12, (40, *frames.shape[1:]))
    noisy = np.clip(frames[0].astype(np.float64) + noise, 0, 255).astype(np.uint8)
    animator = Animator(model)
    raw = np.stack(list(animator.stream(source, noisy)))
    smooth = np.stack(list(animator.stream(source, noisy, smooth=OneEuroFilter(min_cutoff=0.5, beta=0.0))))
    assert jitter(torch.from_numpy(smooth)) < 0.5 * jitter(torch.from_numpy(raw))
