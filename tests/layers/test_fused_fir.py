"""The folded blur computes the unfused layers' function: exactly in float64, to rounding in float32."""

import pytest
import torch
import torch.nn.functional as F

from lmtk.functional.fir import fir_kernel
from lmtk.layers import ConvLayer, ModulatedConv2d, ResBlock, StyledConv
from lmtk.layers.fused_fir import fold_fir, fold_fir_matrix, fused_upsample_conv2d, set_fused_fir


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).norm() / b.detach().double().norm())


def test_fold_matrix_is_the_full_convolution():
    fir = fir_kernel((1, 3, 3, 1), gain=4.0).double()
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    expected = F.conv_transpose2d(weight.reshape(6, 1, 3, 3), fir[None, None]).view(3, 2, 6, 6)
    assert fold_fir_matrix(3, fir).shape == (9, 36)
    assert torch.allclose(fold_fir(weight, fir), expected, atol=1e-14)


@pytest.mark.parametrize("mode", ["transpose", "phase"])
@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 2, 1), (1, 4, 6, 4, 1)])
@pytest.mark.parametrize("kernel_size", [3, 1])
def test_upsampling_modulated_conv_float64(mode, taps, kernel_size):
    conv = ModulatedConv2d(5, 6, kernel_size, style_dim=8, upsample=True, fir_taps=taps).double()
    x, style = torch.randn(2, 5, 7, 9, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64)
    reference = conv(x, style)
    assert set_fused_fir(conv, mode) == 1
    fused = conv(x, style)
    assert fused.shape == reference.shape
    assert (fused - reference).abs().max() < 1e-12


@pytest.mark.parametrize("mode", ["transpose", "phase"])
def test_upsampling_float32_and_channels_last(mode):
    conv = StyledConv(16, 8, 3, style_dim=8, upsample=True)
    x, style = torch.randn(2, 16, 8, 8), torch.randn(2, 8)
    reference = conv(x, style)
    set_fused_fir(conv, mode)
    assert rel(conv(x, style), reference) < 1e-5
    conv.to(memory_format=torch.channels_last)
    out = conv(x.contiguous(memory_format=torch.channels_last), style)
    assert rel(out, reference) < 1e-5


@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 2, 1)])
def test_downsampling_layers_float64(taps):
    block = ResBlock(4, 6, fir_taps=taps).double()
    x = torch.randn(2, 4, 16, 12, dtype=torch.float64)
    reference = block(x)
    assert set_fused_fir(block, True) == 2  # the 3x3 conv and the 1x1 skip
    fused = block(x)
    assert fused.shape == reference.shape
    assert (fused - reference).abs().max() < 1e-12


def test_downsampling_float32():
    layer = ConvLayer(8, 8, 3, downsample=True)
    x = torch.randn(2, 8, 16, 16)
    reference = layer(x)
    set_fused_fir(layer, True)
    assert rel(layer(x), reference) < 1e-5


def test_gradients_match_float64():
    """Training through the folded kernel: the same gradients for the stored parameters."""
    conv = ModulatedConv2d(3, 4, 3, style_dim=8, upsample=True).double()
    down = ConvLayer(4, 2, 3, downsample=True).double()
    x, style = torch.randn(2, 3, 6, 6, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64)

    def grads():
        conv.zero_grad()
        down.zero_grad()
        down(conv(x, style)).square().sum().backward()
        return [p.grad.clone() for p in (*conv.parameters(), *down.parameters())]

    reference = grads()
    set_fused_fir(conv, "phase")
    set_fused_fir(down, True)
    for fused, expected in zip(grads(), reference):
        assert torch.allclose(fused, expected, atol=1e-10)


def test_off_by_default_and_state_dict_unchanged():
    conv = ModulatedConv2d(4, 4, 3, style_dim=8, upsample=True)
    layer = ConvLayer(4, 4, 3, downsample=True)
    assert conv.fused_fir is False and layer.fused_fir is False
    keys = list(conv.state_dict()), list(layer.state_dict())
    set_fused_fir(conv, True)
    set_fused_fir(layer, True)
    with torch.no_grad():
        conv(torch.randn(1, 4, 4, 4), torch.randn(1, 8))
        layer(torch.randn(1, 4, 8, 8))
    assert (list(conv.state_dict()), list(layer.state_dict())) == keys
    assert set_fused_fir(conv, False) == 1 and conv.fused_fir is False


def test_cached_kernel_follows_the_weight():
    conv = ModulatedConv2d(4, 4, 3, style_dim=8, upsample=True)
    set_fused_fir(conv, "phase")
    x, style = torch.randn(1, 4, 5, 5), torch.randn(1, 8)
    with torch.inference_mode():
        first = conv(x, style)
        assert torch.equal(conv(x, style), first)
    with torch.no_grad():
        conv.weight.mul_(2.0)  # a trained or loaded weight bumps the version: the cache is rebuilt
        fused = conv(x, style)
    set_fused_fir(conv, False)
    with torch.no_grad():
        assert rel(fused, conv(x, style)) < 1e-5


def test_bad_modes():
    conv = ModulatedConv2d(4, 4, 3, style_dim=8, upsample=True)
    with pytest.raises(ValueError, match="upsample must be"):
        set_fused_fir(conv, "fft")
    with pytest.raises(ValueError, match="mode must be"):
        fused_upsample_conv2d(torch.randn(1, 4, 4, 4), conv.weight.transpose(0, 1), conv.fir, (1, 1), "fft")
