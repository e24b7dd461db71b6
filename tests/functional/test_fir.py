"""Tests for lmtk.functional.fir against a direct implementation of StyleGAN2's ``upfirdn2d``."""

import pytest
import torch
import torch.nn.functional as F

from lmtk.functional.fir import fir_downsample2d, fir_filter2d, fir_kernel, fir_upsample2d


def upfirdn2d_reference(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Zero-insert by ``up``, zero-pad ``pad``, correlate with the flipped kernel, keep every ``down``-th."""
    batch, channels, height, width = x.shape
    upsampled = x.new_zeros(batch, channels, height * up, width * up)
    upsampled[..., ::up, ::up] = x
    padded = F.pad(upsampled, (pad[0], pad[1], pad[0], pad[1]))
    flipped = kernel.flip(0, 1).to(x.dtype)
    out = F.conv2d(padded.reshape(batch * channels, 1, *padded.shape[-2:]), flipped[None, None])
    out = out.reshape(batch, channels, *out.shape[-2:])
    return out[..., ::down, ::down]


KERNELS = {
    "binomial": lambda: fir_kernel((1, 3, 3, 1), gain=4.0),
    "asymmetric": lambda: fir_kernel((1, 2, 3, 4), gain=4.0),
    "non_separable": lambda: torch.rand(4, 4, generator=torch.Generator().manual_seed(0)),
}


@pytest.mark.parametrize("gain", [1.0, 4.0, 0.5])
@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 2, 1), (1, 1)])
def test_fir_kernel_sums_to_gain(taps, gain):
    kernel = fir_kernel(taps, gain=gain)
    assert kernel.shape == (len(taps), len(taps))
    assert kernel.dtype == torch.float32
    assert torch.isclose(kernel.sum(), torch.tensor(gain))
    # separable: rank one, the outer product of the normalised taps
    taps_t = torch.tensor(taps, dtype=torch.float32)
    assert torch.allclose(kernel, torch.outer(taps_t, taps_t) / taps_t.sum() ** 2 * gain)


@pytest.mark.parametrize("name", list(KERNELS))
def test_upsample_matches_upfirdn2d(name):
    kernel = KERNELS[name]()
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    # StyleGAN2's Upsample: up=2, pad=((p + 1) // 2 + 1, p // 2) with p = K - 2, i.e. (2, 1) for K = 4
    expected = upfirdn2d_reference(x, kernel, up=2, pad=(2, 1))
    out = fir_upsample2d(x, kernel)
    assert out.shape == (2, 3, 12, 10)
    assert out.dtype == torch.float64
    assert torch.allclose(out, expected, atol=1e-12)


@pytest.mark.parametrize("name", list(KERNELS))
def test_downsample_matches_upfirdn2d(name):
    kernel = KERNELS[name]() / 4
    x = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    # StyleGAN2's Downsample: down=2, pad=((p + 1) // 2, p // 2) with p = K - 2
    expected = upfirdn2d_reference(x, kernel, down=2, pad=(1, 1))
    out = fir_downsample2d(x, kernel)
    assert out.shape == (2, 3, 4, 6)
    assert torch.allclose(out, expected, atol=1e-12)


@pytest.mark.parametrize("padding", [(2, 1), (1, 2), (2, 2), (0, 0), (3, 0)])
@pytest.mark.parametrize("name", list(KERNELS))
def test_filter_matches_upfirdn2d(name, padding):
    kernel = KERNELS[name]()
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64)
    expected = upfirdn2d_reference(x, kernel, pad=padding)
    out = fir_filter2d(x, kernel, padding)
    assert out.shape == (1, 2, 7 + sum(padding) - 3, 7 + sum(padding) - 3)
    assert torch.allclose(out, expected, atol=1e-12)


def test_filter_asymmetric_padding_is_a_crop_of_symmetric():
    kernel = KERNELS["asymmetric"]()
    x = torch.randn(2, 3, 9, 9)
    symmetric = fir_filter2d(x, kernel, (2, 2))
    assert torch.allclose(fir_filter2d(x, kernel, (2, 1)), symmetric[..., :-1, :-1], atol=1e-6)
    assert torch.allclose(fir_filter2d(x, kernel, (1, 2)), symmetric[..., 1:, 1:], atol=1e-6)


def test_constant_image_stays_constant_in_the_interior():
    x = torch.full((1, 2, 8, 8), 0.7)
    up = fir_upsample2d(x, fir_kernel((1, 3, 3, 1), gain=4.0))
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.full_like(up[..., 2:-2, 2:-2], 0.7), atol=1e-6)
    down = fir_downsample2d(x, fir_kernel((1, 3, 3, 1)))
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.full_like(down[..., 1:-1, 1:-1], 0.7), atol=1e-6)
    filtered = fir_filter2d(x, fir_kernel((1, 3, 3, 1)), (2, 1))
    assert torch.allclose(filtered[..., 2:-2, 2:-2], torch.full_like(filtered[..., 2:-2, 2:-2], 0.7))
    # the zero padding darkens the border, so the check above is not vacuous
    assert filtered[..., 0, 0].abs().max() < 0.7


def test_filters_follow_input_dtype_and_layout():
    kernel = fir_kernel((1, 3, 3, 1), gain=4.0)
    x = torch.randn(1, 3, 4, 4).to(memory_format=torch.channels_last)
    for fn in (lambda t: fir_upsample2d(t, kernel), lambda t: fir_filter2d(t, kernel, (2, 1))):
        assert torch.allclose(fn(x), fn(x.contiguous()), atol=1e-6)
        assert fn(x.double()).dtype == torch.float64


def test_gradcheck():
    kernel = fir_kernel((1, 3, 3, 1), gain=4.0).double()
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fir_upsample2d(t, kernel), (x,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda t: fir_filter2d(t, kernel, (2, 1)), (x,), fast_mode=True)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="even"):
        fir_upsample2d(torch.randn(1, 1, 4, 4), fir_kernel((1, 2, 1)))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        fir_filter2d(torch.randn(1, 4, 4), fir_kernel((1, 1)), (0, 0))


@pytest.mark.parametrize("name", ["binomial", "asymmetric"])
@pytest.mark.parametrize("padding", [(2, 1), (1, 1), (2, 2), (0, 0)])
def test_separable_filter_matches_upfirdn2d(name, padding):
    """The shifted multiply-adds equal the depthwise convolution for rank-one kernels, flip included."""
    kernel = KERNELS[name]()
    x = torch.randn(2, 3, 9, 7, dtype=torch.float64)
    expected = upfirdn2d_reference(x, kernel, pad=padding)
    out = fir_filter2d(x, kernel, padding, separable=True)
    assert out.shape == expected.shape and out.dtype == torch.float64
    # the kernels are stored in float32: binomial taps are exact there, the asymmetric ones are rounded,
    # so its factors differ from the stored kernel's entries by float32 rounding
    tolerance = 1e-12 if name == "binomial" else 1e-6
    assert (out - expected).abs().max() < tolerance


def test_separable_filter_keeps_the_dtype_and_computes_in_float32():
    kernel = fir_kernel((1, 3, 3, 1))
    x = torch.randn(1, 4, 16, 16)
    out = fir_filter2d(x.bfloat16(), kernel, (2, 1), separable=True)
    assert out.dtype == torch.bfloat16
    exact = fir_filter2d(x.bfloat16().float(), kernel, (2, 1))
    # one rounding of the float32 result to bf16, not one per pass (relative spacing 2**-8)
    assert ((out.float() - exact).abs() <= exact.abs() * 2**-8 + 1e-6).all()
