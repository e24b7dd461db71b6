"""Tests for lmtk.layers.equalized: run-time weight scaling, lr multiplier and fused activation."""

import math

import pytest
import torch
import torch.nn.functional as F

from lmtk.layers import EqualConv2d, EqualLinear


@pytest.mark.parametrize(("kernel_size", "stride", "padding"), [(1, 1, 0), (3, 1, 1), (3, 2, 0)])
def test_equal_conv2d_is_scaled_conv(kernel_size, stride, padding):
    torch.manual_seed(0)
    conv = EqualConv2d(4, 6, kernel_size, stride=stride, padding=padding)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 4, 9, 9)
    scale = 1 / math.sqrt(4 * kernel_size**2)
    expected = F.conv2d(x, conv.weight * scale, conv.bias, stride=stride, padding=padding)
    assert torch.allclose(conv(x), expected, atol=1e-6)


def test_equal_conv2d_without_bias_and_unit_variance_output():
    torch.manual_seed(0)
    conv = EqualConv2d(64, 64, 3, padding=1, bias=False)
    assert conv.bias is None
    # the run-time scale keeps unit-variance inputs at roughly unit variance
    out = conv(torch.randn(4, 64, 16, 16))[..., 1:-1, 1:-1]
    assert 0.8 < out.std().item() < 1.2


def test_equal_conv2d_gradient_is_scaled():
    conv = EqualConv2d(3, 2, 3, bias=False)
    x = torch.randn(1, 3, 5, 5)
    conv(x).sum().backward()
    weight = conv.weight.detach().requires_grad_(True)
    F.conv2d(x, weight).sum().backward()
    # d(out)/d(stored weight) carries the 1/sqrt(fan_in) factor: the point of equalized learning rate
    assert torch.allclose(conv.weight.grad, weight.grad * conv.scale, atol=1e-6)


@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_equal_linear_matches_linear(lr_mul):
    torch.manual_seed(0)
    layer = EqualLinear(8, 5, bias_init=0.5, lr_mul=lr_mul)
    x = torch.randn(3, 8)
    expected = F.linear(x, layer.weight * lr_mul / math.sqrt(8), layer.bias * lr_mul)
    assert torch.allclose(layer(x), expected, atol=1e-6)
    # the stored weight is divided by lr_mul at init, so the effective weight has std 1/sqrt(fan_in)
    assert torch.allclose(layer.bias, torch.full((5,), 0.5))


def test_equal_linear_effective_weight_is_independent_of_lr_mul():
    torch.manual_seed(0)
    big = EqualLinear(256, 256, lr_mul=1.0)
    torch.manual_seed(0)
    small = EqualLinear(256, 256, lr_mul=0.01)
    x = torch.randn(4, 256)
    assert torch.allclose(big(x), small(x), rtol=1e-4, atol=1e-5)


def test_equal_linear_leaky_relu_activation():
    torch.manual_seed(0)
    layer = EqualLinear(6, 4, bias_init=0.1, activation="leaky_relu")
    x = torch.randn(5, 6)
    pre = F.linear(x, layer.weight * layer.scale) + layer.bias
    expected = F.leaky_relu(pre, 0.2) * math.sqrt(2)
    assert torch.allclose(layer(x), expected, atol=1e-6)


def test_equal_linear_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        EqualLinear(4, 4, activation="gelu")


def test_equal_linear_without_bias():
    layer = EqualLinear(4, 3, bias=False)
    assert layer.bias is None
    x = torch.randn(2, 4)
    assert torch.allclose(layer(x), x @ (layer.weight * layer.scale).t(), atol=1e-6)
