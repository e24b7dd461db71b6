"""Encoders: image -> latent code and appearance feature pyramid."""

from .lia_encoder import LIAEncoder
from .timm_encoder import TimmEncoder

__all__ = ["LIAEncoder", "TimmEncoder"]
