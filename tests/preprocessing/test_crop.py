"""Crop boxes: helpers, cropping with padding, and pasting a crop back without touching the outside."""

import cv2
import numpy as np
import pytest

from lmtk.preprocessing.crop import Box, CroppedVideo, crop_to_box, feather_mask, framing_box, paste_back


def _smooth_image(height: int = 120, width: int = 160, seed: int = 0) -> np.ndarray:
    # low-frequency content, so a down-and-up resize round trip changes it only a little
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 10, width // 10, 3), np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def _outside(shape: tuple[int, ...], box: Box) -> np.ndarray:
    x0, y0, x1, y1 = box.to_int()
    mask = np.ones(shape[:2], bool)
    mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = False
    return mask


def test_box_helpers():
    box = Box.from_center(50, 40, 20)
    assert (box.x0, box.y0, box.x1, box.y1) == (40, 30, 60, 50)
    assert box.center == (50, 40) and box.side == 20 and box.width == box.height == 20
    grown = box.expand(0.5)
    assert grown.center == box.center and grown.side == pytest.approx(40)
    assert box.shift(5, -5).center == (55, 35)
    assert box.scale(2.0) == Box(80, 60, 120, 100)
    assert box.union(Box(0, 0, 10, 10)) == Box(0, 0, 60, 50)
    assert Box(0, 0, 10, 4).square() == Box(0, -3, 10, 7)

    # clip_to moves, never resizes: a square stays a square of the same side
    moved = Box(-10, 90, 30, 130).clip_to(100, 200)
    assert moved == Box(0, 60, 40, 100) and moved.inside(100, 200)
    too_big = Box(-50, -50, 150, 150).clip_to(100, 300)
    assert too_big.side == 200 and too_big.center == (100, 50)
    assert Box(10.4, 20.6, 30.4, 40.6).to_int() == (10, 21, 30, 41)
    assert Box(1.2, 1.2, 1.3, 1.3).to_int() == (1, 1, 2, 2)  # never empty
    assert Box(0.123, 0, 1, 1).to_list() == [0.12, 0.0, 1.0, 1.0]
    for bad in [(0, 0, 0, 1), (0, 0, 1, -1), (0, 0, float("nan"), 1)]:
        with pytest.raises(ValueError, match="x1 > x0"):
            Box(*bad)


def test_framing_box():
    box = framing_box((100.0, 80.0), face_size=50.0, margin=0.6, shift=0.1)
    assert box.side == pytest.approx(110.0)  # (1 + 2 * 0.6) face sizes
    assert box.center == pytest.approx((100.0, 85.0))  # moved down by 0.1 face sizes
    assert framing_box((0.0, 0.0), 10.0, margin=0.0, shift=0.0) == Box(-5, -5, 5, 5)
    with pytest.raises(ValueError):
        framing_box((0.0, 0.0), 0.0)


def test_crop_inside_is_a_slice():
    image = _smooth_image()
    box = Box(30, 20, 94, 84)
    np.testing.assert_array_equal(crop_to_box(image, box, 64), image[20:84, 30:94])
    assert crop_to_box(image, box, 32).shape == (32, 32, 3)


def test_crop_pads_outside_the_frame():
    image = _smooth_image()
    box = Box(-20, -10, 40, 50)  # 20 px left of and 10 px above the image
    edge = crop_to_box(image, box, 60, pad="edge")
    black = crop_to_box(image, box, 60, pad="constant")
    np.testing.assert_array_equal(edge[10:, 20:], image[:50, :40])
    np.testing.assert_array_equal(black[10:, 20:], image[:50, :40])
    np.testing.assert_array_equal(edge[10:, :20], np.repeat(image[:50, :1], 20, axis=1))
    assert not black[:10].any() and not black[:, :20].any()
    assert not crop_to_box(image, Box(500, 500, 540, 540), 16, pad="constant").any()
    assert crop_to_box(image, Box(500, 500, 540, 540), 16, pad="edge").shape == (16, 16, 3)
    with pytest.raises(ValueError, match="pad"):
        crop_to_box(image, box, 16, pad="reflect")
    with pytest.raises(ValueError, match="uint8"):
        crop_to_box(image.astype(np.float32), box, 16)


def test_feather_mask():
    mask = feather_mask(40, 40, 0.25)
    assert mask.shape == (40, 40) and mask.dtype == np.float32
    assert mask[10:30, 10:30].min() == 1.0  # the core is the crop alone
    assert 0 < mask[0, 20] < 0.05 and mask[0, 0] == mask.min()  # the seam fades out at the border
    np.testing.assert_array_equal(mask, mask[::-1, ::-1])
    np.testing.assert_array_equal(mask, mask.T)
    assert (feather_mask(8, 12, 0.0) == 1).all()
    with pytest.raises(ValueError):
        feather_mask(8, 8, 0.6)


@pytest.mark.parametrize("box", [Box(40, 25, 112, 97), Box(-30, 70, 42, 142)], ids=["inside", "corner"])
def test_paste_back_round_trip(box):
    image = _smooth_image()
    crop = crop_to_box(image, box, 48)  # shrink: the round trip is not exact inside the box
    pasted = paste_back(image, crop, box, feather=0.1)
    outside = _outside(image.shape, box)
    np.testing.assert_array_equal(pasted[outside], image[outside])
    difference = np.abs(pasted.astype(int) - image.astype(int))[~outside]
    assert difference.mean() < 3 and difference.max() < 40

    # a crop at the box's own size, unresized, gives back the image exactly
    x0, y0, x1, y1 = box.to_int()
    exact = crop_to_box(image, box, x1 - x0)
    np.testing.assert_array_equal(paste_back(image, exact, box), image)


def test_paste_back_changes_only_the_box():
    image = _smooth_image()
    box = Box(40, 20, 120, 100)
    white = np.full((64, 64, 3), 255, np.uint8)
    pasted = paste_back(image, white, box, feather=0.1)
    outside = _outside(image.shape, box)
    np.testing.assert_array_equal(pasted[outside], image[outside])
    assert (pasted[30:90, 50:110] == 255).all()  # the core is the new crop
    ring = np.abs(pasted[20, 40:120].astype(int) - image[20, 40:120].astype(int))
    assert ring.max() < 10  # soft seam: the box's outer row barely changes
    hard = paste_back(image, white, box, feather=0.0)
    assert (hard[20:100, 40:120] == 255).all()
    assert paste_back(image, white, Box(500, 500, 600, 600)).tobytes() == image.tobytes()


def test_cropped_video_reads_crops_lazily():
    class Reader:
        fps, path, asked = 12.5, "clip.mp4", []

        def __len__(self):
            return 5

        def get_frames(self, indices):
            self.asked.append(list(indices))
            images = [_smooth_image(seed=i) for i in indices]
            return np.stack(images) if images else np.zeros((0, 120, 160, 3), np.uint8)

    box = Box(10, 10, 74, 74)
    video = CroppedVideo(Reader(), box, 32)
    assert len(video) == 5 and video.fps == 12.5 and video.size == (32, 32)
    frames = video.get_frames([3, 1])
    assert frames.shape == (2, 32, 32, 3) and video.reader.asked == [[3, 1]]
    np.testing.assert_array_equal(frames[0], crop_to_box(_smooth_image(seed=3), box, 32))
    assert video.get_frames([]).shape == (0, 32, 32, 3)


def test_no_box_means_the_whole_image():
    # what face_box_for_image gives without a face: the documented example must run unchanged
    image = _smooth_image()  # 120 x 160: not square
    whole = Box(0, 0, 160, 120)
    crop = crop_to_box(image, None, 48)
    np.testing.assert_array_equal(crop, crop_to_box(image, whole, 48))
    assert crop.shape == (48, 48, 3)
    pasted = paste_back(image, crop, None, feather=0.1)
    np.testing.assert_array_equal(pasted, paste_back(image, crop, whole, feather=0.1))
    assert pasted.shape == image.shape and not np.array_equal(pasted, image)

    class Reader:
        fps, path = 25.0, None

        def __len__(self):
            return 1

        def get_frames(self, indices):
            return np.stack([image for _ in indices])

    np.testing.assert_array_equal(CroppedVideo(Reader(), None, 48).get_frames([0])[0], crop)
    with pytest.raises(TypeError, match="Box or None"):
        crop_to_box(image, (0, 0, 10, 10), 48)
