"""Animator.stream: frames in from any iterator, results out one by one, the same as the file path."""

import gc
import tracemalloc

import numpy as np
import pytest
import torch
from tiny_models import SIZE

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


def _live_tensor_bytes() -> int:
    """Bytes of the storages of every tensor Python holds (tracemalloc does not see torch's allocator)."""
    gc.collect()
    storages = {}
    for obj in gc.get_objects():
        if issubclass(type(obj), torch.Tensor):  # type(): isinstance would wake lazy modules
            try:
                storage = obj.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
            except RuntimeError:  # fake, functional or opaque (mkldnn) tensors other tests left: no storage
                continue
    return sum(storages.values())


def test_stream_memory_is_flat_in_its_length(model):
    """600 frames from a generator, checked at frames 100 and 600: what the process holds must not grow
    with the frames streamed (keeping the 500 frames between, as uint8 in or out, would be 1.5 MB;
    as float32 tensors 6 MB)."""
    frame_bytes = SIZE * SIZE * 3
    bound = 20 * frame_bytes  # 20 frames' worth over 500 frames
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)

    def camera():
        for _ in range(600):
            yield rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)

    held = {}
    tracemalloc.start()
    try:
        for index, result in enumerate(Animator(model).stream(source, camera(), micro_batch=4), 1):
            assert result.shape == (SIZE, SIZE, 3)
            if index in (100, 600):
                del result
                gc.collect()
                held[index] = (tracemalloc.get_traced_memory()[0], _live_tensor_bytes())
    finally:
        tracemalloc.stop()
    assert sorted(held) == [100, 600]
    python_growth = held[600][0] - held[100][0]
    tensor_growth = held[600][1] - held[100][1]
    print(f"growth over 500 frames: Python/numpy {python_growth} B, tensors {tensor_growth} B")
    assert python_growth < bound, f"Python/numpy memory grew by {python_growth} bytes over 500 frames"
    assert tensor_growth < bound, f"tensor memory grew by {tensor_growth} bytes over 500 frames"
