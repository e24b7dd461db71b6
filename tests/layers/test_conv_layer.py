"""Tests for lmtk.layers.conv_layer: ConvLayer and ResBlock (StyleGAN2 encoder/discriminator blocks)."""

import math

import pytest
import torch
import torch.nn.functional as F

from lmtk.functional.fir import fir_kernel
from lmtk.layers import ConvLayer, ResBlock


def _blur_reference(x: torch.Tensor, taps, pad0: int, pad1: int) -> torch.Tensor:
    kernel = fir_kernel(taps).to(x.dtype).flip(0, 1)
    channels = x.shape[1]
    x = F.pad(x, (pad0, pad1, pad0, pad1))
    return F.conv2d(x, kernel.expand(channels, 1, *kernel.shape), groups=channels)


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_conv_layer_plain_is_conv_bias_leaky_relu(kernel_size):
    torch.manual_seed(0)
    layer = ConvLayer(3, 5, kernel_size)
    with torch.no_grad():
        layer.act.bias.normal_()
    x = torch.randn(2, 3, 8, 8)
    pre = F.conv2d(x, layer.conv.weight * layer.conv.scale, padding=kernel_size // 2)
    expected = F.leaky_relu(pre + layer.act.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)
    out = layer(x)
    assert out.shape == (2, 5, 8, 8)
    assert torch.allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_conv_layer_downsample_is_blur_then_strided_conv(kernel_size):
    torch.manual_seed(0)
    layer = ConvLayer(3, 4, kernel_size, downsample=True, activate=False, bias=False)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    layer.double()
    # StyleGAN2: Blur(pad=((p + 1) // 2, p // 2)) with p = (K_fir - 2) + (k - 1), then a stride-2 conv
    p = 2 + kernel_size - 1
    blurred = _blur_reference(x, (1, 3, 3, 1), (p + 1) // 2, p // 2)
    expected = F.conv2d(blurred, layer.conv.weight * layer.conv.scale, stride=2)
    out = layer(x)
    assert out.shape == (2, 4, 8, 8)
    assert torch.allclose(out, expected, atol=1e-12)


def test_conv_layer_without_activation_is_linear():
    layer = ConvLayer(3, 4, 3, downsample=True, bias=False, activate=False)
    x = torch.randn(1, 3, 8, 8)
    assert not list(p for n, p in layer.named_parameters() if "bias" in n)
    assert torch.allclose(layer(2.5 * x), 2.5 * layer(x), atol=1e-5)


def test_conv_layer_bias_inside_activation():
    layer = ConvLayer(3, 4, 3, activate=False, bias=True)
    assert layer.act is None and layer.conv.bias is not None
    layer = ConvLayer(3, 4, 3, activate=True, bias=True)
    assert layer.conv.bias is None and layer.act.bias is not None


def test_res_block_shape_and_composition():
    torch.manual_seed(0)
    block = ResBlock(4, 8)
    x = torch.randn(2, 4, 16, 16)
    out = block(x)
    assert out.shape == (2, 8, 8, 8)
    expected = (block.conv2(block.conv1(x)) + block.skip(x)) / math.sqrt(2)
    assert torch.allclose(out, expected, atol=1e-6)
    # the skip path has no bias or activation
    assert torch.allclose(block.skip(-x), -block.skip(x), atol=1e-6)


def test_res_block_gradcheck():
    torch.manual_seed(0)
    block = ResBlock(1, 2).double()
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_res_block_gradients_reach_every_parameter():
    block = ResBlock(2, 3)
    out = block(torch.randn(2, 2, 8, 8))
    (out * torch.randn_like(out)).sum().backward()
    for name, param in block.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
