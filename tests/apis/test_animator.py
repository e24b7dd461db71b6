"""Animator: streaming, batched animation must equal the model's own ``transfer``."""

import copy
import threading
import warnings

import av
import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import SIZE, TINY_LIA

from lmtk.apis import Animator
from lmtk.apis.animator import ArrayVideo, to_uint8
from lmtk.apis.start_frame import NearestMagnitudes, magnitude_distances
from lmtk.datasets.transforms import frame_to_tensor
from lmtk.registry import build

NUM_FRAMES = 20


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clip():
    """A source image and driving frames at model size, uint8, plus their [-1, 1] tensors."""
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    frames = rng.integers(0, 256, (NUM_FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    source_t = frame_to_tensor(source)[None]
    frames_t = torch.stack([frame_to_tensor(f) for f in frames])
    return source, frames, source_t, frames_t


def _transfer(model, source_t, frames_t, batch, **kwargs):
    """The reference: ``model.transfer`` over consecutive batches of ``batch`` frames."""
    with torch.inference_mode():
        return torch.cat(
            [
                model.transfer(source_t, frames_t[i : i + batch], **kwargs)
                for i in range(0, len(frames_t), batch)
            ]
        )


def _animate(model, source, frames, batch_size, chunk_size, prefetch=None, **kwargs):
    animator = Animator(model, batch_size=batch_size, chunk_size=chunk_size, prefetch=prefetch)
    return torch.stack(list(animator.animate(source, frames, output="tensor", **kwargs)))


def test_absolute_matches_transfer(model, clip):
    source, frames, source_t, frames_t = clip
    # batch composition decides which convolution kernels run, so compare against the same batches
    small = _animate(model, source, frames, batch_size=1, chunk_size=7, mode="absolute")
    torch.testing.assert_close(
        small, _transfer(model, source_t, frames_t, 1, mode="absolute"), rtol=0, atol=1e-5
    )
    large = _animate(model, source, frames, batch_size=16, chunk_size=64, mode="absolute")
    reference = _transfer(model, source_t, frames_t, 16, mode="absolute")
    torch.testing.assert_close(large, reference, rtol=0, atol=1e-5)
    # chunks only change how frames are read, never the batches: bit-identical
    chunked = _animate(model, source, frames, batch_size=16, chunk_size=7, prefetch=True, mode="absolute")
    torch.testing.assert_close(chunked, large, rtol=0, atol=0)
    # batch 1 vs 16: the untrained network amplifies kernel rounding to a few 1e-5 on outputs of order 1
    torch.testing.assert_close(small, large, rtol=0, atol=1e-4)
    assert (large - small).abs().mean() < 1e-5


def test_relative_matches_transfer(model, clip):
    source, frames, source_t, frames_t = clip
    for start in (0, 3):
        out = _animate(model, source, frames, batch_size=16, chunk_size=7, mode="relative", start_frame=start)
        reference = _transfer(
            model, source_t, frames_t, 16, mode="relative", driving_first=frames_t[start : start + 1]
        )
        torch.testing.assert_close(out, reference, rtol=0, atol=1e-5)
    # relative and absolute differ unless the source's own motion equals the start frame's
    absolute = _animate(model, source, frames, batch_size=16, chunk_size=64, mode="absolute")
    assert (out - absolute).abs().max() > 1e-3


def test_padded_batches_run_at_one_shape_and_give_the_same_frames(model, clip):
    source, frames, _, frames_t = clip
    net = model.net
    shapes = []
    hooks = [
        m.register_forward_pre_hook(lambda m, args: shapes.append(args[0].shape[0]))
        for m in (net.encoder, net.synthesis)
    ]
    try:
        for mode in ("relative", "absolute"):
            plain = _animate(model, source, frames, batch_size=16, chunk_size=64, mode=mode, start_frame=3)
            animator = Animator(model, batch_size=16, pad_batches=True)
            encoded = animator.encode_source(source)
            shapes.clear()
            padded = torch.stack(
                list(animator.animate(encoded, frames, mode=mode, start_frame=3, output="tensor"))
            )
            assert set(shapes) == {16}, shapes  # 20 frames: 16, then 4 padded to 16; the start frame too
            # the same frames; the tail batch ran among copies of its last frame instead of alone
            torch.testing.assert_close(padded, plain, rtol=0, atol=1e-4)
            nearest = Animator(model, batch_size=16).find_start_frame(encoded, frames)
            shapes.clear()
            assert animator.find_start_frame(encoded, frames) == nearest
            assert set(shapes) == {16}
            shapes.clear()
            batch = animator.animate_frames(encoded, frames_t[:5], mode=mode, driving_first=3)
            assert set(shapes) == {16} and batch.shape[0] == 5
            torch.testing.assert_close(batch, padded[:5], rtol=0, atol=1e-4)
    finally:
        for hook in hooks:
            hook.remove()


def test_batches_are_padded_while_the_model_is_compiled(model):
    from lmtk.fast_paths import FastPaths, apply_fast_paths, reference_mode

    animator = Animator(model, batch_size=4)
    assert not animator._pads_batches()
    restore = apply_fast_paths(model, FastPaths(compile="default"))  # compiles lazily: nothing runs here
    try:
        assert animator._pads_batches()
        assert not Animator(model, pad_batches=False)._pads_batches()
        with reference_mode(model):
            assert not animator._pads_batches()
    finally:
        restore()
    assert not animator._pads_batches()


def test_animate_frames_and_numpy_output(model, clip):
    source, frames, source_t, frames_t = clip
    animator = Animator(model, batch_size=8)
    batch = animator.animate_frames(source_t, frames_t, mode="relative", driving_first=2)
    streamed = torch.stack(
        list(animator.animate(source, frames, mode="relative", start_frame=2, output="tensor"))
    )
    torch.testing.assert_close(batch, streamed, rtol=0, atol=0)
    uint8 = np.stack(list(animator.animate(source, frames, mode="relative", start_frame=2)))
    assert uint8.shape == (NUM_FRAMES, SIZE, SIZE, 3) and uint8.dtype == np.uint8
    np.testing.assert_array_equal(uint8, to_uint8(streamed))
    # uint8 frames of another size are resized like the streaming path does
    big = np.repeat(np.repeat(frames[:4], 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(
        animator.animate_frames(source, big, mode="absolute", output="numpy"),
        np.stack(list(animator.animate(source, big, mode="absolute"))),
    )


def test_source_encoded_once_and_reads_bounded(model, clip, monkeypatch):
    source, frames, _, _ = clip
    animator = Animator(model, batch_size=4, chunk_size=6)
    calls = {"encode": 0, "encode_code": 0}
    net = model.net
    for name in calls:
        original = getattr(net, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(net, name, counted)
    reads = []

    class SpyReader(ArrayVideo):
        def get_frames(self, indices):
            reads.append(len(indices))
            return super().get_frames(indices)

    out = list(animator.animate(source, SpyReader(frames), mode="relative", start_frame=7))
    assert len(out) == NUM_FRAMES
    assert calls["encode"] == 1  # the source's pyramid, once
    assert calls["encode_code"] == 1 + NUM_FRAMES // 4  # the start frame, then one per batch
    assert max(reads) <= 6 and sum(reads) == NUM_FRAMES + 1


def test_prefetch_thread_stops_when_abandoned(model, clip):
    source, frames, _, _ = clip
    before = threading.active_count()
    stream = Animator(model, batch_size=2, chunk_size=2, prefetch=True).animate(source, frames)
    assert next(stream).shape == (SIZE, SIZE, 3)
    assert threading.active_count() == before + 1
    stream.close()
    assert threading.active_count() == before

    class Broken(ArrayVideo):
        def get_frames(self, indices):
            if indices[0] >= 6:
                raise ValueError("corrupt frame")
            return super().get_frames(indices)

    stream = Animator(model, batch_size=2, chunk_size=2, prefetch=True).animate(source, Broken(frames))
    with pytest.raises(ValueError, match="corrupt frame"):
        list(stream)
    assert threading.active_count() == before


def test_automatic_start_frame(model, clip):
    source, frames, source_t, _ = clip
    frames = frames.copy()
    frames[5] = source
    animator = Animator(model, batch_size=4, chunk_size=3)
    assert animator.find_start_frame(source, frames) == 5
    auto = torch.stack(list(animator.animate(source, frames, start_frame="auto", output="tensor")))
    fixed = torch.stack(list(animator.animate(source, frames, start_frame=5, output="tensor")))
    torch.testing.assert_close(auto, fixed, rtol=0, atol=0)
    # with the source's own pose as start, frame 5 is the source's own relative reconstruction
    with torch.inference_mode():
        own = model.transfer(source_t, source_t, mode="absolute")
    torch.testing.assert_close(auto[5:6], own, rtol=0, atol=1e-4)


def test_nearest_magnitudes_streaming():
    source = torch.tensor([1.0, 2.0])
    mags = torch.tensor([[0.0, 0.0], [1.0, 2.5], [9.0, 9.0], [1.0, 2.5], [1.0, 2.1]])
    torch.testing.assert_close(magnitude_distances(source, mags)[[1, 4]], torch.tensor([0.5, 0.1]))
    search = NearestMagnitudes(source)
    for part in (mags[:2], mags[2:2], mags[2:4], mags[4:]):
        search.update(part)
    assert search.index == 4 and search.count == 5
    assert search.distance == pytest.approx(0.1, abs=1e-6)


def test_video_file_any_size(model, tmp_path):
    path = tmp_path / "clip.mp4"
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(11):
            frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    source = rng.integers(0, 256, (50, 70, 4), dtype=np.uint8)  # RGBA, not square
    for resize in ("resize", "crop"):
        animator = Animator(model, batch_size=4, chunk_size=5, resize=resize)
        pairs = list(animator.animate(source, path, mode="absolute", with_driving=True))
        assert len(pairs) == 11
        assert all(d.shape == r.shape == (SIZE, SIZE, 3) for d, r in pairs)


def test_bfloat16_runs(model, clip):
    source, frames, _, _ = clip
    out = Animator(model, dtype="bfloat16", batch_size=4).animate_frames(source, frames[:4], mode="absolute")
    assert out.shape == (4, 3, SIZE, SIZE) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_errors(model, clip):
    source, frames, _, _ = clip
    animator = Animator(model)
    with pytest.raises(ValueError, match="mode"):
        animator.animate(source, frames, mode="sideways")
    with pytest.raises(ValueError, match="out of range"):
        animator.animate(source, frames, start_frame=NUM_FRAMES)
    with pytest.raises(ValueError, match="no frames"):
        animator.animate(source, frames[:0])
    with pytest.raises(FileNotFoundError):
        animator.animate("missing.png", frames)
    with pytest.raises(ValueError, match="dtype"):
        Animator(model, dtype="float64")
    with pytest.raises(ValueError, match="batch_size"):
        Animator(model, batch_size=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            Animator(model, device="cuda")


def test_read_only_frames_animate_without_warnings(model, clip):
    """Decoders and PIL hand out read-only arrays; torch.from_numpy warns about those."""
    source, frames, _, _ = clip
    frozen_source, frozen = source.copy(), frames.copy()
    frozen_source.flags.writeable = frozen.flags.writeable = False
    animator = Animator(model, batch_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        animated = np.stack(list(animator.animate(frozen_source, frozen, mode="absolute")))
    np.testing.assert_array_equal(animated, np.stack(list(animator.animate(source, frames, mode="absolute"))))


def test_integer_tensors_are_rejected(model, clip):
    """A uint8 tensor holds 0..255, not [-1, 1]: reading it as an image would give garbage silently."""
    source, frames, source_t, frames_t = clip
    animator = Animator(model, batch_size=8)
    as_uint8 = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
    with pytest.raises(ValueError, match="driving is a uint8 tensor.*numpy uint8 array or a float tensor"):
        animator.animate_frames(source, as_uint8, mode="absolute")
    with pytest.raises(ValueError, match="source is a uint8 tensor"):
        animator.encode_source(as_uint8[:1])
    with pytest.raises(ValueError, match="driving_first is a int64 tensor"):
        animator.animate_frames(
            source, frames_t, driving_first=torch.zeros(1, 3, SIZE, SIZE, dtype=torch.long)
        )
    assert animator.animate_frames(source_t.double(), frames_t[:2].half(), mode="absolute").shape[0] == 2


def test_float_tensors_outside_the_image_range_are_rejected(model, clip):
    """0-255 values in a float tensor gave saturated frames and no error; NaN gave NaN frames."""
    source, frames, source_t, frames_t = clip
    animator = Animator(model, batch_size=8)
    with pytest.raises(ValueError, match=r"driving has values in \[0, 255\].*x / 127.5 - 1"):
        animator.animate_frames(source, (frames_t[:2] + 1) * 127.5, mode="absolute")
    broken = source_t.clone()
    broken[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="source has NaN or infinite values"):
        animator.encode_source(broken)
    with pytest.raises(ValueError, match="as an image; pass \\(H, W, 3\\) uint8"):
        animator.encode_source(source.astype(np.float32) / 255)
    slightly_over = frames_t[:2].clamp(-1, 1) * 1.05  # resampling overshoot is allowed
    assert animator.animate_frames(source, slightly_over, mode="absolute").shape[0] == 2


def test_driving_frames_as_lists_and_the_reference_as_one_frame(model, clip):
    source, frames, source_t, frames_t = clip
    animator = Animator(model, batch_size=np.int64(3))  # numpy integers count as integers
    expected = animator.animate_frames(source, frames[:4], mode="absolute")
    assert torch.equal(animator.animate_frames(source, list(frames[:4]), mode="absolute"), expected)
    as_pil = [Image.fromarray(frame) for frame in frames[:4]]
    assert torch.equal(animator.animate_frames(source, as_pil, mode="absolute"), expected)
    assert torch.equal(
        animator.animate_frames(source, list(frames_t[:4])), animator.animate_frames(source, frames_t[:4])
    )
    assert animator.animate_frames(source, []).shape == (0, 3, SIZE, SIZE)
    by_tensor = animator.animate_frames(source, frames_t[:4], driving_first=torch.tensor(2))
    assert torch.equal(by_tensor, animator.animate_frames(source, frames_t[:4], driving_first=2))
    # a batch as the reference paired its frames with the driving frames in turn, silently
    with pytest.raises(
        ValueError, match="driving_first must be one frame, \\(1, 3, S, S\\), got a batch of 2"
    ):
        animator.animate_frames(source, frames_t[:4], driving_first=frames_t[:2])
    with pytest.raises(
        ValueError, match="a list of frames .* got str; for a video file or a frame folder use animate"
    ):
        animator.animate_frames(source, "driving.mp4")
    with pytest.raises(ValueError, match="got list"):
        animator.animate_frames(source, [frames[0].astype(np.float32)])
    with pytest.raises(ValueError, match="runs float32 weights"):
        Animator(copy.deepcopy(model).double())
    with pytest.raises(ValueError, match="weights are bfloat16: .*model.float"):
        Animator(copy.deepcopy(model).bfloat16(), dtype="bfloat16")


def test_absolute_mode_ignores_the_start_frame(model, clip):
    source, frames, _, _ = clip
    animator = Animator(model, batch_size=8)
    ignored = np.stack(list(animator.animate(source, frames, mode="absolute", start_frame=NUM_FRAMES + 5)))
    np.testing.assert_array_equal(ignored, np.stack(list(animator.animate(source, frames, mode="absolute"))))
    with pytest.raises(ValueError, match="out of range"):
        animator.animate(source, frames, mode="relative", start_frame=NUM_FRAMES)


def test_encoded_source_moves_between_dtypes(model, clip):
    source, frames, _, _ = clip
    low = Animator(model, dtype="bfloat16", batch_size=8)
    encoded = low.encode_source(source)
    assert encoded.code.dtype == torch.bfloat16
    assert low.encode_source(encoded) is encoded  # its own source comes back as it is
    full = Animator(model, batch_size=8)
    adopted = full.encode_source(encoded)
    assert all(t.dtype == torch.float32 for t in (adopted.code, adopted.path, *adopted.features))
    reused = full.animate_frames(encoded, frames[:4], mode="relative")
    fresh = full.animate_frames(source, frames[:4], mode="relative")
    assert (reused - fresh).abs().mean() < 0.05  # bfloat16 rounding of the source's code and features


def test_animate_frames_edge_inputs(model, clip):
    source, frames, _, frames_t = clip
    animator = Animator(model, batch_size=8)
    # no frames: the same empty result from an array as from a tensor
    for driving in (frames[:0], frames_t[:0]):
        assert animator.animate_frames(source, driving, mode="absolute").shape == (0, 3, SIZE, SIZE)
        # relative mode's default reference is frame 0, which no frames lack (it raised "out of range")
        assert animator.animate_frames(source, driving).shape == (0, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match="driving_first 2 out of range for 0 frames"):
        animator.animate_frames(source, frames[:0], driving_first=2)
    assert animator.animate_frames(source, frames[:0], mode="absolute", output="numpy").shape == (
        0,
        SIZE,
        SIZE,
        3,
    )
    with pytest.raises(ValueError, match="driving_first must be a frame index.*got True"):
        animator.animate_frames(source, frames, driving_first=True)
    with pytest.raises(ValueError, match="driving_first must be a frame index"):
        animator.animate_frames(source, frames, driving_first="2")


@pytest.mark.parametrize("device", ["mps", "xpu", "meta"])
def test_unavailable_devices_are_one_clear_error(model, device):
    backend = getattr(torch, device, None)
    if hasattr(backend, "is_available") and backend.is_available():
        pytest.skip(f"{device} is available here")
    with pytest.raises(ValueError, match="use the CPU"):
        Animator(model, device=device)


TINY_LIAX = dict(
    type="lmtk.LIAX.v1",
    encoder={**TINY_LIA["encoder"], "widen_first": True},
    generator=dict(
        type="lmtk.LIAXGenerator.v1",
        size=SIZE,
        latent_dim=32,
        channel_base=256,
        max_channels=32,
        norm_groups=8,
        num_flow_blocks=1,
        num_refine_blocks=1,
    ),
    motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=32, num_directions=5),
    direction_names=dict(yaw1=3),
)


def test_liax_animates_with_an_edit_as_its_transfer_does(clip):
    """LIA-X's edit-then-animate through the Animator: the source's magnitudes are edited first."""
    torch.manual_seed(0)
    liax = build(TINY_LIAX).eval()
    source, frames, source_t, frames_t = clip
    for mode, kwargs in (("relative", dict(driving_first=frames_t[:1])), ("absolute", {})):
        out = _animate(liax, source, frames, batch_size=8, chunk_size=8, mode=mode, edit={"yaw1": 0.8})
        reference = _transfer(liax, source_t, frames_t, 8, mode=mode, edit={"yaw1": 0.8}, **kwargs)
        torch.testing.assert_close(out, reference, rtol=0, atol=1e-4)
        plain = _animate(liax, source, frames, batch_size=8, chunk_size=8, mode=mode)
        assert (out - plain).abs().max() > 1e-3
    animator = Animator(liax)
    encoded = animator.encode_source(source, edit={3: 0.8})
    reference = _transfer(
        liax, source_t, frames_t[:4], 8, mode="relative", driving_first=frames_t[:1], edit={"yaw1": 0.8}
    )
    torch.testing.assert_close(animator.animate_frames(encoded, frames_t[:4]), reference, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="unknown direction 'roll'"):
        animator.encode_source(source, edit={"roll": 0.1})
    with pytest.raises(ValueError, match="already encoded"):
        animator.encode_source(encoded, edit={"yaw1": 0.1})


def test_edit_is_model_edit_and_reuses_an_encoded_source(clip):
    """``Animator.edit`` is ``model.edit``: G(z + D(A + edit)); an encoded source runs only the path and
    the decoder, with the same image as a fresh encode."""
    torch.manual_seed(0)
    liax = build(TINY_LIAX).eval()
    source, _, source_t, _ = clip
    animator = Animator(liax)
    encoded = animator.encode_source(source)
    for edit in ({}, {"yaw1": 0.8}, {1: -0.5, "yaw1": 0.3}):
        with torch.inference_mode():
            reference = to_uint8(liax.edit(source_t, edit))[0]
        fresh = animator.edit(source, edit)
        assert fresh.shape == (SIZE, SIZE, 3) and fresh.dtype == np.uint8
        np.testing.assert_array_equal(fresh, reference)
        np.testing.assert_array_equal(animator.edit(encoded, edit), fresh)
    moved, still = animator.edit(encoded, {"yaw1": 0.8}), animator.edit(encoded, {})
    assert np.abs(moved.astype(int) - still).max() > 2  # the edit moves the image
    with pytest.raises(ValueError, match="unknown direction 'roll'"):
        animator.edit(encoded, {"roll": 0.1})
