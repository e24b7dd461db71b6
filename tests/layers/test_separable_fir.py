"""The separable blur computes the depthwise one's function: exactly in float64, to rounding in float32."""

import pytest
import torch

from lmtk.layers import ConvLayer, ModulatedConv2d, ResBlock, StyledConv
from lmtk.layers.fused_fir import set_fused_fir
from lmtk.layers.separable_fir import set_separable_fir


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).norm() / b.detach().double().norm())


@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 2, 1), (1, 4, 6, 4, 1)])
@pytest.mark.parametrize("kernel_size", [3, 1])
def test_upsampling_modulated_conv_float64(taps, kernel_size):
    conv = ModulatedConv2d(5, 6, kernel_size, style_dim=8, upsample=True, fir_taps=taps).double()
    x, style = torch.randn(2, 5, 7, 9, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64)
    reference = conv(x, style)
    assert set_separable_fir(conv) == 1 and conv.separable_fir
    out = conv(x, style)
    assert out.shape == reference.shape
    assert (out - reference).abs().max() < 1e-12


@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 2, 1)])
def test_downsampling_block_float64(taps):
    block = ResBlock(4, 6, fir_taps=taps).double()
    x = torch.randn(2, 4, 16, 12, dtype=torch.float64)
    reference = block(x)
    assert set_separable_fir(block) == 2  # the 3x3 conv and the 1x1 skip; conv1 does not resample
    out = block(x)
    assert out.shape == reference.shape
    assert (out - reference).abs().max() < 1e-12


def test_float32_channels_last_keeps_the_layout():
    conv = StyledConv(16, 8, 3, style_dim=8, upsample=True)
    layer = ConvLayer(8, 8, 3, downsample=True)
    x, style = torch.randn(2, 16, 8, 8), torch.randn(2, 8)
    reference = layer(conv(x, style))
    for module in (conv, layer):
        set_separable_fir(module)
        module.to(memory_format=torch.channels_last)
    hidden = conv(x.contiguous(memory_format=torch.channels_last), style)
    out = layer(hidden)
    assert hidden.is_contiguous(memory_format=torch.channels_last)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert rel(out, reference) < 1e-5


def test_gradients_match_float64():
    conv = ModulatedConv2d(3, 4, 3, style_dim=8, upsample=True).double()
    down = ConvLayer(4, 2, 3, downsample=True).double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    style = torch.randn(2, 8, dtype=torch.float64)

    def grads():
        conv.zero_grad()
        down.zero_grad()
        x.grad = None
        down(conv(x, style)).square().sum().backward()
        return [p.grad.clone() for p in (*conv.parameters(), *down.parameters(), x)]

    reference = grads()
    set_separable_fir(conv)
    set_separable_fir(down)
    for separable, expected in zip(grads(), reference):
        assert torch.allclose(separable, expected, atol=1e-10)


def test_folded_layers_keep_the_folded_form():
    """With both switched on, a folded layer runs folded: the same result as folding alone."""
    layer = ConvLayer(4, 4, 3, downsample=True)
    x = torch.randn(1, 4, 8, 8)
    set_fused_fir(layer, True)
    folded = layer(x)
    set_separable_fir(layer)
    assert torch.equal(layer(x), folded)


def test_off_by_default_switches_back_and_leaves_the_state_dict_alone():
    conv = ModulatedConv2d(4, 4, 3, style_dim=8, upsample=True)
    plain = ModulatedConv2d(4, 4, 3, style_dim=8)
    assert conv.separable_fir is False
    keys = list(conv.state_dict())
    assert set_separable_fir(torch.nn.Sequential(conv, plain)) == 1  # only the resampling layer
    assert plain.separable_fir is False
    assert list(conv.state_dict()) == keys
    assert set_separable_fir(conv, False) == 1 and conv.separable_fir is False
