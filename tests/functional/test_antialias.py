"""Tests for lmtk.functional.antialias."""

import pytest
import torch
import torch.nn.functional as F

from lmtk.functional.antialias import antialias_downsample, antialias_kernel1d


def _reference_2d(image: torch.Tensor, scale: float) -> torch.Tensor:
    # FOMM's formulation: one 2-D Gaussian, zero padding, depthwise conv, nearest interpolation.
    sigma = (1 / scale - 1) / 2
    size = 2 * round(sigma * 4) + 1
    grid = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(grid**2) / (2 * sigma**2))
    kernel = g[:, None] * g[None, :]
    kernel = (kernel / kernel.sum()).to(image.dtype)
    channels = image.shape[1]
    out = F.pad(image, (size // 2,) * 4)
    out = F.conv2d(out, kernel.expand(channels, 1, size, size), groups=channels)
    return F.interpolate(out, scale_factor=scale)


def test_scale_one_is_identity():
    image = torch.randn(2, 3, 32, 32)
    assert antialias_downsample(image, 1.0) is image


@pytest.mark.parametrize(("scale", "size"), [(0.5, 16), (0.25, 8), (0.125, 4)])
def test_output_shape(scale, size):
    out = antialias_downsample(torch.randn(2, 3, 32, 48), scale)
    assert out.shape == (2, 3, size, size * 3 // 2)


def test_kernel_size_and_normalisation():
    # sigma = (1/s - 1) / 2: 0.5 for s = 1/2 (5 taps), 1.5 for 1/4 (13 taps), 3.5 for 1/8 (29 taps).
    for scale, taps in [(0.5, 5), (0.25, 13), (0.125, 29)]:
        kernel = antialias_kernel1d(scale)
        assert kernel.shape == (taps,)
        assert torch.allclose(kernel.sum(), torch.tensor(1.0))
        assert torch.allclose(kernel, kernel.flip(0))


def test_matches_2d_gaussian_reference():
    image = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    for scale in (0.5, 0.25, 0.125):
        expected = _reference_2d(image, scale)
        assert torch.allclose(antialias_downsample(image, scale), expected, atol=1e-12)


def test_constant_image_stays_constant():
    image = torch.full((1, 3, 64, 64), 0.7)
    # Interior: the normalised kernel preserves a constant.
    out = antialias_downsample(image, 0.25)
    assert torch.allclose(out[..., 2:-2, 2:-2], torch.full_like(out[..., 2:-2, 2:-2], 0.7), atol=1e-6)
    # Zero padding (the published behaviour) darkens the border; replicate padding does not.
    assert out[0, 0, 0, 0] < 0.7 - 1e-3
    out = antialias_downsample(image, 0.25, padding_mode="replicate")
    assert torch.allclose(out, torch.full_like(out, 0.7), atol=1e-6)


def test_lowpass_reduces_checkerboard():
    ij = torch.arange(64)
    board = ((ij[:, None] + ij[None, :]) % 2).float() * 2 - 1  # +-1, the highest frequency
    image = board.expand(1, 3, 64, 64)
    # Plain subsampling aliases the checkerboard into a constant of full amplitude 1.
    assert image[..., ::2, ::2].abs().min() == 1
    # sigma = 0.5 at scale 1/2 passes (0.574)^2 = 0.33 of the Nyquist amplitude; sigma = 1.5 almost nothing.
    half = antialias_downsample(image, 0.5)[..., 4:-4, 4:-4]
    quarter = antialias_downsample(image, 0.25)[..., 4:-4, 4:-4]
    assert half.abs().max() < 0.35
    assert quarter.abs().max() < 1e-4


def test_gradient_and_dtype():
    image = torch.randn(1, 3, 32, 32, requires_grad=True)
    antialias_downsample(image, 0.5).sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    out = antialias_downsample(torch.randn(1, 3, 32, 32, dtype=torch.bfloat16), 0.5)
    assert out.dtype == torch.bfloat16


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="scale"):
        antialias_downsample(torch.randn(1, 3, 8, 8), 1.5)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        antialias_downsample(torch.randn(3, 8, 8), 0.5)
    with pytest.raises(ValueError, match="padding_mode"):
        antialias_downsample(torch.randn(1, 3, 8, 8), 0.5, padding_mode="zeros")
