"""Tests for lmtk.functional.image_range: the 0-255 <-> [-1, 1] conversions every caller shares."""

import numpy as np
import pytest
import torch

from lmtk.functional import float_to_uint8, uint8_to_float

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_every_pixel_value_survives_the_round_trip(device):
    pixels = torch.arange(256, dtype=torch.uint8, device=device)
    images = uint8_to_float(pixels)
    assert images.dtype == torch.float32 and images.device == pixels.device
    assert images.min() == -1 and images.max() == 1 and bool((images.diff() > 0).all())
    assert torch.equal(float_to_uint8(images), pixels)


@pytest.mark.parametrize("device", DEVICES)
def test_the_arithmetic_is_bit_for_bit_that_of_the_callers_before(device):
    # what lmtk's callers each wrote by hand before: x / 127.5 - 1, and clamp, + 1, * 127.5, round
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (2, 5, 7, 3), dtype=torch.uint8, generator=generator).to(device)
    layout = pixels.permute(0, 3, 1, 2)  # a non-contiguous view, as the callers pass
    assert torch.equal(uint8_to_float(layout), layout.float() / 127.5 - 1.0)
    images = (torch.randn(2, 3, 5, 7, generator=generator) * 1.5).to(device)
    for tensor in (images, images.bfloat16(), images.double()):
        before = tensor.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
        assert torch.equal(float_to_uint8(tensor), before)


def test_values_outside_the_range_are_clamped_and_halves_round_to_even():
    images = torch.tensor([-5.0, -1.0, 0.0, 1 / 255, 1.0, 9.0, float("inf")])
    # 0 -> 127.5 -> 128 and 1/255 -> 128 too: rounding is to the nearest, halves to even
    assert float_to_uint8(images).tolist() == [0, 0, 128, 128, 255, 255, 255]


def test_conversions_leave_their_input_alone():
    images = torch.tensor([0.25, -0.5], requires_grad=True)
    assert float_to_uint8(images).requires_grad is False
    floats = torch.tensor([0.0, 255.0])
    assert uint8_to_float(floats).tolist() == [-1.0, 1.0]
    assert floats.tolist() == [0.0, 255.0]  # a float input is copied, never rescaled in place
    pixels = torch.from_numpy(np.array([[10, 20]], np.uint8))
    assert uint8_to_float(pixels).shape == (1, 2)
