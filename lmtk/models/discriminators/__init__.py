"""Discriminators for adversarial training."""

from .stylegan2 import StyleGAN2Discriminator

__all__ = ["StyleGAN2Discriminator"]
