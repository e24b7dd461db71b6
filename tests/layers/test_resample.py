"""conv2d_resample's folded, separable and subpixel blurs compute the depthwise (reference) layers' function:
exactly in float64, to rounding in float32."""

import pytest
import torch
import torch.nn.functional as F

from lmtk.functional.fir import fir_filter2d, fir_kernel
from lmtk.layers import ConvLayer, ModulatedConv2d, ResBlock, StyledConv, conv2d_resample, set_blur
from lmtk.layers.resample import blur_padding, fold_fir, fold_fir_matrix, subpixel_weight

FAST = ["folded", "separable", "subpixel"]


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


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("height", [5, 6])
def test_subpixel_weight_is_the_transposed_conv(n, height):
    """The phases conv then pixel_shuffle: the stride-2 transposed conv, then zeros up to an even size."""
    x = torch.randn(2, 3, height, height + 1, dtype=torch.float64)
    weight = torch.randn(3, 4, n, n, dtype=torch.float64)
    expected = F.conv_transpose2d(x, weight, stride=2)
    phases, padding = subpixel_weight(weight)
    assert phases.shape == (16, 3, (n + 1) // 2, (n + 1) // 2)
    out = F.pixel_shuffle(F.conv2d(x, phases, padding=padding), 2)
    rows, columns = expected.shape[-2:]
    assert out.shape[-2:] == (rows + n % 2, columns + n % 2)
    assert (out[..., :rows, :columns] - expected).abs().max() < 1e-12
    assert not out[..., rows:, :].any() and not out[..., columns:].any()


def test_depthwise_is_the_conv_then_the_blur():
    """The reference form written out: StyleGAN2's transposed conv then blur, blur then strided conv."""
    fir = fir_kernel((1, 3, 3, 1), gain=4.0).double()
    weight = torch.randn(6, 5, 3, 3, dtype=torch.float64)
    x = torch.randn(2, 5, 7, 9, dtype=torch.float64)
    up = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
    assert torch.equal(conv2d_resample(x, weight, fir, up=True), fir_filter2d(up, fir, (1, 1)))
    assert conv2d_resample(x, weight, fir, up=True).shape == (2, 6, 14, 18)
    x = torch.randn(2, 6, 16, 12, dtype=torch.float64)
    expected = F.conv2d(fir_filter2d(x, fir / 4, (2, 2)), weight.transpose(0, 1), stride=2)
    assert torch.equal(conv2d_resample(x, weight.transpose(0, 1), fir / 4, down=True), expected)
    assert blur_padding(3, 4, up=True) == (1, 1) and blur_padding(1, 4, up=False) == (1, 1)


@pytest.mark.parametrize("impl", FAST)
@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 2, 1), (1, 4, 6, 4, 1)])
@pytest.mark.parametrize("kernel_size", [3, 1])
def test_upsampling_modulated_conv_float64(impl, taps, kernel_size):
    conv = ModulatedConv2d(5, 6, kernel_size, style_dim=8, upsample=True, fir_taps=taps).double()
    x, style = torch.randn(2, 5, 7, 9, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64)
    reference = conv(x, style)
    assert set_blur(conv, impl) == 1 and conv.blur == impl
    out = conv(x, style)
    assert out.shape == reference.shape
    assert (out - reference).abs().max() < 1e-12


@pytest.mark.parametrize("impl", FAST)
@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 2, 1)])
def test_downsampling_block_float64(impl, taps):
    block = ResBlock(4, 6, fir_taps=taps).double()
    x = torch.randn(2, 4, 16, 12, dtype=torch.float64)
    reference = block(x)
    assert set_blur(block, impl) == 2  # the 3x3 conv and the 1x1 skip; conv1 does not resample
    out = block(x)
    assert out.shape == reference.shape
    assert (out - reference).abs().max() < 1e-12


@pytest.mark.parametrize("impl", FAST)
def test_upsampling_float32_and_channels_last(impl):
    conv = StyledConv(16, 8, 3, style_dim=8, upsample=True)
    x, style = torch.randn(2, 16, 8, 8), torch.randn(2, 8)
    reference = conv(x, style)
    set_blur(conv, impl)
    assert rel(conv(x, style), reference) < 1e-5
    conv.to(memory_format=torch.channels_last)
    out = conv(x.contiguous(memory_format=torch.channels_last), style)
    assert rel(out, reference) < 1e-5


@pytest.mark.parametrize("impl", FAST)
def test_downsampling_float32(impl):
    layer = ConvLayer(8, 8, 3, downsample=True)
    x = torch.randn(2, 8, 16, 16)
    reference = layer(x)
    set_blur(layer, impl)
    assert rel(layer(x), reference) < 1e-5


def test_separable_float32_channels_last_keeps_the_layout():
    conv = StyledConv(16, 8, 3, style_dim=8, upsample=True)
    layer = ConvLayer(8, 8, 3, downsample=True)
    x, style = torch.randn(2, 16, 8, 8), torch.randn(2, 8)
    reference = layer(conv(x, style))
    for module in (conv, layer):
        set_blur(module, "separable")
        module.to(memory_format=torch.channels_last)
    hidden = conv(x.contiguous(memory_format=torch.channels_last), style)
    out = layer(hidden)
    assert hidden.is_contiguous(memory_format=torch.channels_last)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert rel(out, reference) < 1e-5


@pytest.mark.parametrize("impl", FAST)
def test_gradients_match_float64(impl):
    """Training through the folded kernel or the separable passes: the same gradients."""
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
    set_blur(conv, impl)
    set_blur(down, impl)
    for fast, expected in zip(grads(), reference):
        assert torch.allclose(fast, expected, atol=1e-10)


@pytest.mark.parametrize("impl", FAST)
def test_depthwise_by_default_and_state_dict_unchanged(impl):
    conv = ModulatedConv2d(4, 4, 3, style_dim=8, upsample=True)
    layer = ConvLayer(4, 4, 3, downsample=True)
    plain = ModulatedConv2d(4, 4, 3, style_dim=8)
    assert conv.blur == layer.blur == "depthwise"
    keys = list(conv.state_dict()), list(layer.state_dict())
    assert set_blur(torch.nn.Sequential(conv, layer, plain), impl) == 2  # only the resampling layers
    assert plain.blur == "depthwise"
    with torch.no_grad():
        conv(torch.randn(1, 4, 4, 4), torch.randn(1, 8))
        layer(torch.randn(1, 4, 8, 8))
    assert (list(conv.state_dict()), list(layer.state_dict())) == keys
    assert set_blur(conv) == 1 and conv.blur == "depthwise"


def test_cached_kernel_follows_the_weight():
    conv = ModulatedConv2d(4, 4, 3, style_dim=8, upsample=True)
    set_blur(conv, "folded")
    x, style = torch.randn(1, 4, 5, 5), torch.randn(1, 8)
    with torch.inference_mode():
        first = conv(x, style)
        assert torch.equal(conv(x, style), first)
    with torch.no_grad():
        conv.weight.mul_(2.0)  # a trained or loaded weight bumps the version: the cache is rebuilt
        fused = conv(x, style)
    set_blur(conv, "depthwise")
    with torch.no_grad():
        assert rel(fused, conv(x, style)) < 1e-5


def test_bad_arguments():
    conv = ModulatedConv2d(4, 4, 3, style_dim=8, upsample=True)
    for bad in ("fft", "phase", True):
        with pytest.raises(ValueError, match="blur must be one of"):
            set_blur(conv, bad)
    x, weight = torch.randn(1, 4, 4, 4), conv.weight
    with pytest.raises(ValueError, match="impl must be one of"):
        conv2d_resample(x, weight, conv.fir, up=True, impl="phase")
    with pytest.raises(ValueError, match="resamples one way"):
        conv2d_resample(x, weight, conv.fir)
    with pytest.raises(ValueError, match="resamples one way"):
        conv2d_resample(x, weight, conv.fir, up=True, down=True)
    with pytest.raises(ValueError, match="downsampling only"):
        conv2d_resample(x, weight, conv.fir, up=True, bias=torch.zeros(4))
