"""Tests for lmtk.functional.gan_losses."""

import math

import pytest
import torch

from lmtk.functional.gan_losses import (
    is_lazy_regularization_step,
    lazy_regularization_weight,
    logistic_fake_loss,
    logistic_real_loss,
    nonsaturating_discriminator_loss,
    nonsaturating_generator_loss,
    r1_penalty,
)


def test_values_at_known_logits():
    zeros = torch.zeros(4)
    assert nonsaturating_generator_loss(zeros).item() == pytest.approx(math.log(2))
    assert nonsaturating_discriminator_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    logits = torch.tensor([2.0, -1.0])
    # -log sigmoid(l) = log(1 + exp(-l)); -log(1 - sigmoid(l)) = log(1 + exp(l)).
    expected_real = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(1.0))) / 2
    expected_fake = (math.log1p(math.exp(2.0)) + math.log1p(math.exp(-1.0))) / 2
    assert logistic_real_loss(logits).item() == pytest.approx(expected_real, rel=1e-6)
    assert logistic_fake_loss(logits).item() == pytest.approx(expected_fake, rel=1e-6)
    assert nonsaturating_generator_loss(logits).item() == pytest.approx(expected_real, rel=1e-6)


def test_stable_at_extreme_logits():
    logits = torch.tensor([-200.0, 200.0])
    assert torch.isfinite(nonsaturating_generator_loss(logits))
    assert nonsaturating_generator_loss(torch.tensor([200.0])).item() == pytest.approx(0.0, abs=1e-6)
    assert nonsaturating_generator_loss(torch.tensor([-200.0])).item() == pytest.approx(200.0)


def test_discriminator_loss_decreases_as_d_gets_right():
    real, fake = torch.zeros(8), torch.zeros(8)
    base = nonsaturating_discriminator_loss(real, fake)
    assert nonsaturating_discriminator_loss(real + 1, fake) < base
    assert nonsaturating_discriminator_loss(real, fake - 1) < base
    assert nonsaturating_discriminator_loss(real + 3, fake - 3) < nonsaturating_discriminator_loss(
        real + 1, fake - 1
    )
    # And the generator's loss falls when D is fooled.
    assert nonsaturating_generator_loss(fake + 1) < nonsaturating_generator_loss(fake)


def test_r1_of_linear_discriminator_is_weight_norm():
    torch.manual_seed(0)
    w = torch.randn(3, 8, 8, dtype=torch.float64)
    images = torch.randn(4, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    logits = (images * w).flatten(1).sum(1)  # D(x) = <w, x>, gradient w for every sample
    penalty = r1_penalty(logits, images)
    assert penalty.item() == pytest.approx(w.square().sum().item(), rel=1e-10)


def test_r1_is_differentiable_in_discriminator():
    torch.manual_seed(0)
    w = torch.randn(3, 8, 8, requires_grad=True)
    images = torch.randn(2, 3, 8, 8, requires_grad=True)
    logits = (images * w).flatten(1).sum(1, keepdim=True)
    r1_penalty(logits, images).backward()
    # d|w|^2/dw = 2w
    assert torch.allclose(w.grad, 2 * w.detach(), atol=1e-5)


def test_r1_requires_grad_on_images():
    images = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(images.sum((1, 2, 3)), images)


def test_lazy_schedule():
    assert lazy_regularization_weight(10.0, 16) == 80.0
    steps = [i for i in range(40) if is_lazy_regularization_step(i, 16)]
    assert steps == [0, 16, 32]
    assert all(is_lazy_regularization_step(i, 1) for i in range(5))
    with pytest.raises(ValueError):
        is_lazy_regularization_step(3, 0)
