"""Paired transforms: one random draw for both frames, mmcv registry and Compose, seeding."""

import numpy as np
import pytest
import torch
from mmcv.transforms import TRANSFORMS, Compose

from lmtk.datasets.transforms import (
    PairedColorJitter,
    PairedRandomCrop,
    PairedRandomFlip,
    PairedResize,
    frame_to_tensor,
    resize_image,
)


def _pair(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    source = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    driving = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return dict(source=source, driving=driving)


def test_registered_in_mmcv_and_built_from_dicts():
    for name in ("PairedRandomFlip", "PairedColorJitter", "PairedResize"):
        assert TRANSFORMS.get(name) is not None
    pipeline = Compose([dict(type="PairedRandomFlip", prob=1.0), dict(type="PairedResize", size=(12, 16))])
    assert isinstance(pipeline.transforms[0], PairedRandomFlip)
    out = pipeline(_pair())
    assert out["source"].shape == out["driving"].shape == (12, 16, 3)
    assert out["img_shape"] == (12, 16)


@pytest.mark.parametrize("direction, axis", [("horizontal", 1), ("vertical", 0)])
def test_flip_is_shared_by_the_pair(direction, axis):
    pair = _pair()
    out = PairedRandomFlip(prob=1.0, direction=direction)(dict(pair))
    assert out["flip"] and out["flip_direction"] == direction
    np.testing.assert_array_equal(out["source"], np.flip(pair["source"], axis))
    np.testing.assert_array_equal(out["driving"], np.flip(pair["driving"], axis))
    out = PairedRandomFlip(prob=0.0)(dict(pair))
    assert not out["flip"]
    np.testing.assert_array_equal(out["source"], pair["source"])


def test_flip_decision_same_for_both_frames_and_seedable():
    flip = PairedRandomFlip(prob=0.5)
    pair = _pair()

    def decisions(seed):
        np.random.seed(seed)
        flags = []
        for _ in range(40):
            out = flip(dict(pair))
            source_flipped = np.array_equal(out["source"], pair["source"][:, ::-1])
            driving_flipped = np.array_equal(out["driving"], pair["driving"][:, ::-1])
            assert source_flipped == driving_flipped == out["flip"]
            flags.append(out["flip"])
        return flags

    first = decisions(1)
    assert decisions(1) == first
    assert 5 < sum(first) < 35


def test_color_jitter_same_parameters_for_both_frames():
    jitter = PairedColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.2)
    frame = _pair()["source"]
    for seed in range(5):
        np.random.seed(seed)
        out = jitter(dict(source=frame, driving=frame.copy()))
        np.testing.assert_array_equal(out["source"], out["driving"])
        assert out["source"].dtype == np.uint8 and out["source"].shape == frame.shape
    assert not np.array_equal(out["source"], frame)


def test_color_jitter_brightness_scales_both_frames_alike():
    source = np.full((4, 4, 3), 100, np.uint8)
    driving = np.full((4, 4, 3), 50, np.uint8)
    np.random.seed(3)
    out = PairedColorJitter(brightness=0.4)(dict(source=source, driving=driving))
    factor = out["color_jitter"]["brightness"]
    assert factor != 1.0 and 0.6 <= factor <= 1.4
    np.testing.assert_allclose(out["source"], np.rint(100 * factor), atol=0)
    np.testing.assert_allclose(out["driving"], np.rint(50 * factor), atol=0)


@pytest.mark.parametrize("seed", range(6))
def test_color_jitter_matches_torchvision_with_the_same_draw(seed):
    import torchvision.transforms.v2.functional as F

    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    frame[:8] = 255  # saturated and black areas: clipping matters there
    frame[-8:] = 0
    np.random.seed(seed)
    out = PairedColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.5)(
        dict(source=frame, driving=frame.copy())
    )
    draw = out["color_jitter"]
    expected = torch.from_numpy(frame).permute(2, 0, 1).float() / 255
    adjust = dict(
        brightness=F.adjust_brightness,
        contrast=F.adjust_contrast,
        saturation=F.adjust_saturation,
        hue=F.adjust_hue,
    )
    for name in draw["order"]:
        expected = adjust[name](expected, draw[name])
    expected = (expected * 255).permute(1, 2, 0).numpy()
    # torchvision's grey is 0.2989 R + 0.587 G + 0.114 B, ours 0.299 R (the ITU-R 601 weights)
    difference = np.abs(out["source"].astype(np.float32) - expected)
    assert difference.max() <= 0.75 and difference.mean() < 0.3, (difference.max(), difference.mean())


def test_color_jitter_is_seedable():
    jitter = PairedColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1)
    outputs = []
    for seed in (7, 7, 8):
        np.random.seed(seed)
        outputs.append(jitter(_pair())["source"])
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert not np.array_equal(outputs[0], outputs[2])


def test_color_jitter_last_only_applies_the_last_drawn_adjustment_alone():
    # the published LIA jitter: each adjustment applied to the original frame, so only the last survives
    frame = _pair()["source"]
    last_only = PairedColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.2, mode="last_only")
    chosen = []
    for seed in range(40):
        np.random.seed(seed)
        out = last_only(dict(source=frame, driving=frame.copy()))
        draw = out["color_jitter"]
        assert draw["applied"] == draw["order"][-1:]
        np.testing.assert_array_equal(out["source"], out["driving"])
        # the same draw, chained, but with every other adjustment switched off
        name = draw["applied"][0]
        alone = PairedColorJitter(**{name: (draw[name], draw[name])})
        np.random.seed(seed)
        np.testing.assert_array_equal(alone(dict(source=frame, driving=frame))["source"], out["source"])
        chosen.append(name)
    assert set(chosen) == {"brightness", "contrast", "saturation", "hue"}

    np.random.seed(0)
    chained = PairedColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.2)(
        dict(source=frame, driving=frame)
    )
    assert chained["color_jitter"]["applied"] == chained["color_jitter"]["order"]


def test_color_jitter_last_only_draws_among_the_switched_on_adjustments():
    jitter = PairedColorJitter(brightness=0.3, hue=0.1, mode="last_only")
    frame = _pair()["source"]
    applied = set()
    for seed in range(20):
        np.random.seed(seed)
        applied.update(jitter(dict(source=frame, driving=frame.copy()))["color_jitter"]["applied"])
    assert applied == {"brightness", "hue"}
    with pytest.raises(ValueError, match="mode must be one of 'chained', 'last_only'"):
        PairedColorJitter(brightness=0.1, mode="published")


def test_random_crop_cuts_one_window_from_both_frames():
    pair = _pair()
    crop = PairedRandomCrop((16, 20))
    corners = set()
    for seed in range(60):
        np.random.seed(seed)
        out = crop(dict(pair))
        top, left, height, width = out["crop"]
        assert (height, width) == (16, 20) and 0 <= top <= 8 and 0 <= left <= 12
        for key in ("source", "driving"):
            assert out[key].shape == (16, 20, 3) and out[key].flags.c_contiguous
            np.testing.assert_array_equal(out[key], pair[key][top : top + 16, left : left + 20])
        corners.add((top, left))
    assert {0, 8} <= {top for top, _ in corners} and {0, 12} <= {left for _, left in corners}
    np.testing.assert_array_equal(PairedRandomCrop((24, 32))(dict(pair))["source"], pair["source"])
    with pytest.raises(ValueError, match="does not fit a 24x32 frame"):
        PairedRandomCrop(28)(dict(pair))


def test_invalid_arguments_and_inputs():
    with pytest.raises(ValueError, match="prob"):
        PairedRandomFlip(prob=1.5)
    with pytest.raises(ValueError, match="hue"):
        PairedColorJitter(hue=0.7)
    with pytest.raises(KeyError, match="driving"):
        PairedRandomFlip()(dict(source=np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        PairedResize(8)(dict(source=np.zeros((4, 4)), driving=np.zeros((4, 4))))


def test_resize_antialiased_and_to_tensor():
    # A one-pixel checkerboard shrunk 4x must average to grey, not alias to black or white.
    board = ((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)
    small = resize_image(np.repeat(board[..., None], 3, axis=2), 16)
    assert small.shape == (16, 16, 3)
    assert np.all(np.abs(small.astype(int) - 128) <= 2)
    assert resize_image(np.zeros((10, 20, 3), np.uint8), (30, 40)).shape == (30, 40, 3)
    tensor = frame_to_tensor(np.array([[[0, 255, 128]]], np.uint8))
    assert tensor.shape == (3, 1, 1) and tensor.dtype == torch.float32
    torch.testing.assert_close(tensor.flatten(), torch.tensor([-1.0, 1.0, 128 / 127.5 - 1]))
    with pytest.raises(TypeError, match="uint8"):
        frame_to_tensor(np.zeros((2, 2, 3), np.float32))
