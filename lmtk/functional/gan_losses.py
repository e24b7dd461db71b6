"""Non-saturating GAN losses and the R1 gradient penalty (StyleGAN2 conventions).

With ``sigmoid(logit)`` the probability that an image is real, ``-log sigmoid(l) = softplus(-l)`` and
``-log(1 - sigmoid(l)) = softplus(l)``; softplus is the numerically stable form of both.

- generator: ``softplus(-D(fake)).mean()`` (the non-saturating objective of Goodfellow et al.; LIA eq. 9)
- discriminator: ``softplus(-D(real)).mean() + softplus(D(fake)).mean()``
- R1 (Mescheder et al. 2018): ``||grad_x D(x)||^2`` on real images, summed over ``(C, H, W)`` and averaged
  over the batch. StyleGAN2 applies it lazily, every ``interval`` steps with weight
  ``gamma / 2 * interval`` so its average strength matches an every-step penalty.

Example:
    >>> logits = torch.zeros(4)
    >>> round(nonsaturating_generator_loss(logits).item(), 4)  # log 2
    0.6931
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import check_shape

__all__ = [
    "logistic_real_loss",
    "logistic_fake_loss",
    "nonsaturating_generator_loss",
    "nonsaturating_discriminator_loss",
    "r1_penalty",
    "lazy_regularization_weight",
    "is_lazy_regularization_step",
]


def logistic_real_loss(logits: Tensor) -> Tensor:
    """``-log sigmoid(logits)`` averaged: the loss for logits that should say "real". Any shape."""
    return F.softplus(-logits).mean()


def logistic_fake_loss(logits: Tensor) -> Tensor:
    """``-log(1 - sigmoid(logits))`` averaged: the loss for logits that should say "fake". Any shape."""
    return F.softplus(logits).mean()


def nonsaturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """Generator loss ``softplus(-D(fake)).mean()``; ``fake_logits`` is ``(B,)`` or ``(B, 1)``."""
    return logistic_real_loss(fake_logits)


def nonsaturating_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator loss ``softplus(-D(real)).mean() + softplus(D(fake)).mean()``.

    ``fake_logits`` must come from detached fakes, otherwise the generator receives this gradient too.
    """
    return logistic_real_loss(real_logits) + logistic_fake_loss(fake_logits)


def r1_penalty(real_logits: Tensor, real_images: Tensor) -> Tensor:
    """R1 penalty ``mean_b sum_{c,h,w} (d sum(D(x)) / d x)^2``; a scalar that is differentiable in D.

    Args:
        real_logits: ``(B,)`` or ``(B, 1)``, computed from ``real_images``.
        real_images: ``(B, C, H, W)`` with ``requires_grad=True`` set before the discriminator ran.
    """
    check_shape(real_images, ["B", "C", "H", "W"], "real_images")
    if not real_images.requires_grad:
        raise ValueError(
            "r1_penalty needs the gradient with respect to the real images: call "
            "real_images.requires_grad_(True) before running the discriminator on them"
        )
    if real_logits.shape[0] != real_images.shape[0]:
        raise ValueError(
            f"real_logits has batch {real_logits.shape[0]} but real_images has batch {real_images.shape[0]}"
        )
    # Summing the logits gives each sample's own gradient: samples do not interact in D.
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    # At least float32: under autocast the gradient may be bf16/fp16 and its squares tiny.
    grad = grad.to(torch.promote_types(grad.dtype, torch.float32))
    return grad.square().flatten(1).sum(1).mean()


def lazy_regularization_weight(weight: float, interval: int) -> float:
    """StyleGAN2's effective R1 weight ``weight / 2 * interval`` for a penalty applied every ``interval``."""
    if interval < 1:
        raise ValueError(f"interval must be >= 1, got {interval}")
    return weight / 2.0 * interval


def is_lazy_regularization_step(step: int, interval: int) -> bool:
    """Whether the lazy regulariser runs at ``step`` (0-based): steps 0, interval, 2 * interval, ..."""
    if interval < 1:
        raise ValueError(f"interval must be >= 1, got {interval}")
    return step % interval == 0
