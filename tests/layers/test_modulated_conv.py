"""Tests for lmtk.layers.modulated_conv: the activation-scaled form against the published grouped form."""

import itertools

import pytest
import torch

from lmtk.layers import ModulatedConv2d, StyledConv, grouped_modulated_conv2d

CONFIGS = list(itertools.product([True, False], [True, False], [1, 3]))  # demodulate, upsample, kernel


def _module(demodulate: bool, upsample: bool, kernel_size: int, dtype=torch.float32) -> ModulatedConv2d:
    torch.manual_seed(0)
    module = ModulatedConv2d(4, 6, kernel_size, style_dim=8, demodulate=demodulate, upsample=upsample)
    with torch.no_grad():  # a non-trivial affine bias so styles differ per channel
        module.affine.bias.normal_(1.0, 0.3)
    return module.to(dtype)


def _inputs(dtype=torch.float32, batch: int = 3):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 4, 8, 8, generator=generator).to(dtype)
    style = torch.randn(batch, 8, generator=generator).to(dtype)
    return x, style


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize(("demodulate", "upsample", "kernel_size"), CONFIGS)
def test_matches_grouped_form_float64(demodulate, upsample, kernel_size):
    module = _module(demodulate, upsample, kernel_size, torch.float64)
    x, style = _inputs(torch.float64)
    out = module(x, style)
    expected = grouped_modulated_conv2d(module, x, style)
    size = 16 if upsample else 8
    assert out.shape == expected.shape == (3, 6, size, size)
    assert out.dtype == torch.float64
    assert torch.allclose(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("demodulate", "upsample", "kernel_size"), CONFIGS)
def test_matches_grouped_form_float32(demodulate, upsample, kernel_size):
    module = _module(demodulate, upsample, kernel_size)
    x, style = _inputs()
    out = module(x, style)
    expected = grouped_modulated_conv2d(module, x, style)
    assert torch.allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("demodulate", "upsample", "kernel_size"), CONFIGS)
def test_channels_last_input(demodulate, upsample, kernel_size):
    module = _module(demodulate, upsample, kernel_size)
    x, style = _inputs()
    out = module(x.to(memory_format=torch.channels_last), style)
    expected = grouped_modulated_conv2d(module, x, style)
    assert torch.allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("demodulate", "upsample"), [(True, False), (True, True), (False, False)])
def test_bf16_autocast_close_to_fp32(demodulate, upsample):
    module = _module(demodulate, upsample, 3)
    x, style = _inputs()
    reference = module(x, style)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(x, style)
    assert torch.isfinite(out).all()
    assert out.shape == reference.shape
    assert _relative_error(out, reference) < 5e-2


def test_demodulation_normalises_output_channels():
    # with demodulation each output channel has unit weight norm per sample: style scaling cancels out
    module = _module(True, False, 3)
    x, style = _inputs()
    with torch.no_grad():
        module.affine.bias.zero_()
    assert torch.allclose(module(x, style), module(x, 3.0 * style), rtol=1e-4, atol=1e-5)


def test_samples_are_modulated_independently():
    module = _module(True, True, 3)
    x, style = _inputs()
    batched = module(x, style)
    single = torch.cat([module(x[i : i + 1], style[i : i + 1]) for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-5)
    assert not torch.allclose(batched[0], module(x[:1], style[1:2])[0], atol=1e-3)


@pytest.mark.parametrize("demodulate", [True, False])
def test_gradients_match_grouped_form(demodulate):
    module = _module(demodulate, True, 3, torch.float64)
    x, style = _inputs(torch.float64)
    weights = torch.randn(3, 6, 16, 16, dtype=torch.float64)
    grads = []
    for fn in (module, lambda a, b: grouped_modulated_conv2d(module, a, b)):
        module.zero_grad()
        (fn(x, style) * weights).sum().backward()
        grads.append([p.grad.clone() for p in module.parameters()])
    for fast, reference in zip(*grads):
        assert torch.allclose(fast, reference, rtol=1e-9, atol=1e-10)


def test_rejects_bad_shapes():
    module = _module(True, False, 3)
    with pytest.raises(ValueError, match="ModulatedConv2d"):
        module(torch.randn(2, 4, 8, 8), torch.randn(3, 8))
    with pytest.raises(ValueError, match="ModulatedConv2d"):
        module(torch.randn(4, 8, 8), torch.randn(1, 8))


def test_styled_conv_adds_noise_only_when_given():
    torch.manual_seed(0)
    layer = StyledConv(4, 6, 3, style_dim=8)
    x, style = _inputs()
    with torch.no_grad():
        layer.noise_strength.fill_(0.5)
    plain = layer(x, style)
    noisy = layer(x, style, noise=torch.randn(3, 1, 8, 8))
    assert plain.shape == noisy.shape == (3, 6, 8, 8)
    assert not torch.allclose(plain, noisy)
