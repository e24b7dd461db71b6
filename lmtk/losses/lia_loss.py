"""The LIA loss set: L1 + lambda * pyramid VGG19 perceptual + non-saturating adversarial (paper eq. 10).

    L_G = l1_weight * |fake - real|_1 + perceptual_weight * L_vgg + adversarial_weight * softplus(-D(fake))
    L_D = softplus(-D(real)) + softplus(D(fake))            (+ lazy R1, optional)

The defaults (1, 10, 1) are the paper's and give the published total (whose code put the 10 into each
VGG layer weight). Optional StyleGAN2-style lazy R1: the training step asks :meth:`LIALoss.is_r1_step`
and, when true, adds :meth:`LIALoss.r1_loss` (already scaled by ``r1_weight / 2 * r1_interval``) to the
discriminator loss. Every returned key contains ``loss`` so mmengine's ``parse_losses`` sums them; a term
whose weight is 0 is neither computed nor returned.

Example:
    >>> import torch
    >>> from lmtk.registry import build
    >>> losses = build(dict(type="lmtk.LIALoss.v1", perceptual=dict(pretrained=False, scales=(1.0,))))
    >>> fake, real = torch.zeros(2, 3, 32, 32), torch.zeros(2, 3, 32, 32)
    >>> sorted(losses.generator_losses(fake, real, fake_logits=torch.zeros(2)))
    ['loss_adv', 'loss_l1', 'loss_perceptual']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from lmtk.functional.gan_losses import (
    is_lazy_regularization_step,
    lazy_regularization_weight,
    logistic_fake_loss,
    logistic_real_loss,
    nonsaturating_generator_loss,
    r1_penalty,
)
from lmtk.losses.perceptual import AutocastFeatures, PerceptualPyramidLoss, VGG19Features
from lmtk.registry import loss_sets

from ..functional.checks import check_shape

__all__ = ["LIALoss", "build_perceptual_loss"]

_NETWORK_KEYS = ("pretrained", "weights_path", "layers")
_LOSS_KEYS = ("scales", "layer_weights")
_PRECISION_KEY = "feature_dtype"


def build_perceptual_loss(cfg: Mapping[str, Any] | nn.Module | None = None) -> nn.Module:
    """A perceptual loss from a module (returned as is) or a flat dict of options; None = all defaults.

    Dict keys: ``pretrained``, ``weights_path``, ``layers`` (for :class:`VGG19Features`); ``scales``,
    ``layer_weights`` (for :class:`PerceptualPyramidLoss`); ``feature_dtype`` (``"float32"``,
    ``"bfloat16"`` or ``"float16"``: wrap the network in :class:`AutocastFeatures`; unset follows the
    caller's autocast).
    """
    if isinstance(cfg, nn.Module):
        return cfg
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - {*_NETWORK_KEYS, *_LOSS_KEYS, _PRECISION_KEY})
    if unknown:
        raise TypeError(
            f"Unknown perceptual options {unknown}; accepted: "
            f"{[*_NETWORK_KEYS, *_LOSS_KEYS, _PRECISION_KEY]} (or pass a built module)"
        )
    network: nn.Module = VGG19Features(**{k: cfg[k] for k in _NETWORK_KEYS if k in cfg})
    if cfg.get(_PRECISION_KEY) is not None:
        network = AutocastFeatures(network, cfg[_PRECISION_KEY])
    return PerceptualPyramidLoss(network=network, **{k: cfg[k] for k in _LOSS_KEYS if k in cfg})


def _at_least_float32(x: Tensor) -> Tensor:
    # Reductions of bf16/fp16 values lose the small differences a loss is made of; float64 stays.
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _check_weight(name: str, value: float) -> float:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return float(value)


@loss_sets.register("lmtk.LIALoss.v1")
class LIALoss(nn.Module):
    """Generator and discriminator losses of LIA.

    Args:
        l1_weight: weight of the pixel L1 reconstruction loss.
        perceptual_weight: the paper's ``lambda`` on the pyramid perceptual loss; 0 builds no VGG.
        adversarial_weight: weight of the generator's non-saturating loss (the discriminator's loss is
            not weighted).
        perceptual: a perceptual loss module, or options for :func:`build_perceptual_loss`
            (e.g. ``dict(pretrained=False)`` for tests, ``dict(weights_path=...)``); None = pretrained VGG19.
        r1_weight: R1 gamma; 0 disables R1.
        r1_interval: run R1 every this many discriminator steps (lazy regularisation).
    """

    def __init__(
        self,
        l1_weight: float = 1.0,
        perceptual_weight: float = 10.0,
        adversarial_weight: float = 1.0,
        perceptual: Mapping[str, Any] | nn.Module | None = None,
        r1_weight: float = 0.0,
        r1_interval: int = 16,
    ) -> None:
        super().__init__()
        self.l1_weight = _check_weight("l1_weight", l1_weight)
        self.perceptual_weight = _check_weight("perceptual_weight", perceptual_weight)
        self.adversarial_weight = _check_weight("adversarial_weight", adversarial_weight)
        self.r1_weight = _check_weight("r1_weight", r1_weight)
        if not (self.l1_weight or self.perceptual_weight or self.adversarial_weight):
            raise ValueError(
                "l1_weight, perceptual_weight and adversarial_weight are all 0, so the generator has "
                "nothing to learn from; set at least one above 0"
            )
        if r1_interval < 1:
            raise ValueError(f"r1_interval must be >= 1, got {r1_interval}")
        self.r1_interval = int(r1_interval)
        # Not built when unused, so a run without the perceptual term needs no VGG weights.
        self.perceptual = build_perceptual_loss(perceptual) if self.perceptual_weight else None

    def generator_losses(
        self, fake: Tensor, real: Tensor, fake_logits: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Weighted ``loss_l1``, ``loss_perceptual``, ``loss_adv`` (those with a non-zero weight).

        Args:
            fake: ``(B, 3, H, W)`` generated images in ``[-1, 1]``.
            real: ``(B, 3, H, W)`` target images in ``[-1, 1]``; no gradient flows into them.
            fake_logits: ``(B,)`` or ``(B, 1)`` discriminator logits of ``fake``; needed when
                ``adversarial_weight > 0``.
        """
        check_shape(fake, ["B", "C", "H", "W"], "fake")
        if fake.shape != real.shape:
            raise ValueError(
                f"fake and real must be of one shape, got {tuple(fake.shape)}, {tuple(real.shape)}"
            )
        losses: dict[str, Tensor] = {}
        if self.l1_weight:
            losses["loss_l1"] = self.l1_weight * F.l1_loss(
                _at_least_float32(fake), _at_least_float32(real.detach())
            )
        if self.perceptual is not None:
            losses["loss_perceptual"] = self.perceptual_weight * self.perceptual(fake, real)
        if self.adversarial_weight:
            if fake_logits is None:
                raise ValueError("fake_logits are required when adversarial_weight > 0")
            if fake_logits.shape[0] != fake.shape[0]:
                raise ValueError(f"fake_logits batch {fake_logits.shape[0]} != image batch {fake.shape[0]}")
            losses["loss_adv"] = self.adversarial_weight * nonsaturating_generator_loss(
                _at_least_float32(fake_logits)
            )
        return losses

    def discriminator_losses(self, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
        """``loss_d_real = softplus(-D(real)).mean()`` and ``loss_d_fake = softplus(D(fake)).mean()``.

        ``fake_logits`` must come from detached fakes. Shapes ``(B,)`` or ``(B, 1)``.
        """
        return {
            "loss_d_real": logistic_real_loss(_at_least_float32(real_logits)),
            "loss_d_fake": logistic_fake_loss(_at_least_float32(fake_logits)),
        }

    def r1_loss(self, real_logits: Tensor, real_images: Tensor) -> dict[str, Tensor]:
        """``loss_r1``: the R1 penalty times ``r1_weight / 2 * r1_interval``; empty when ``r1_weight == 0``.

        ``real_images`` ``(B, C, H, W)`` must have had ``requires_grad_(True)`` before the discriminator
        produced ``real_logits``.
        """
        if not self.r1_weight:
            return {}
        weight = lazy_regularization_weight(self.r1_weight, self.r1_interval)
        return {"loss_r1": weight * r1_penalty(real_logits, real_images)}

    def is_r1_step(self, step: int) -> bool:
        """Whether discriminator step ``step`` (0-based) adds :meth:`r1_loss`; never when R1 is off."""
        return bool(self.r1_weight) and is_lazy_regularization_step(step, self.r1_interval)

    def extra_repr(self) -> str:
        return (
            f"l1_weight={self.l1_weight}, perceptual_weight={self.perceptual_weight}, "
            f"adversarial_weight={self.adversarial_weight}, r1_weight={self.r1_weight}, "
            f"r1_interval={self.r1_interval}"
        )
