"""LIA's encoder: a StyleGAN2-discriminator-shaped ResNet giving a latent code and a feature pyramid."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ...functional.checks import check_shape
from ...layers import EqualConv2d
from ...registry import encoders
from ..channels import channel_schedule, check_size
from ..residual_trunk import residual_trunk

__all__ = ["LIAEncoder"]


@encoders.register("lmtk.LIAEncoder.v1")
class LIAEncoder(nn.Module):
    """Image ``(B, 3, S, S)`` -> code ``(B, latent_dim)`` and appearance features at 8, 16, ..., S px.

    Args:
        size: input resolution ``S`` (power of two).
        latent_dim: size of the code ``z``.
        channel_multiplier, channel_base, max_channels: the channel schedule
            (see :func:`lmtk.models.channels.channel_schedule`).
        fir_taps: low-pass taps for the downsampling blocks.
        widen_first: each block changes the channels in its first conv, at the input resolution (LIA-X),
            instead of in its second, downsampling one (LIA).

    Attributes:
        feature_channels: ``{resolution: channels}`` of the returned pyramid, coarse to fine.
    """

    def __init__(
        self,
        size: int = 256,
        latent_dim: int = 512,
        channel_multiplier: float = 1.0,
        channel_base: int = 16384,
        max_channels: int = 512,
        fir_taps: Sequence[float] = (1, 3, 3, 1),
        widen_first: bool = False,
    ) -> None:
        super().__init__()
        check_size(size)
        channels = channel_schedule(size, channel_multiplier, channel_base, max_channels)
        self.size = size
        self.latent_dim = latent_dim
        self.stem, self.blocks = residual_trunk(size, channels, fir_taps, widen_first)
        self.to_code = EqualConv2d(channels[4], latent_dim, 4, bias=False)
        self.feature_channels = {r: c for r, c in sorted(channels.items()) if r >= 8}

    def forward(self, image: torch.Tensor, with_features: bool = True):
        """Returns ``(code, features)``; ``features`` is coarse-to-fine, or None if not requested."""
        check_shape(image, ["B", 3, self.size, self.size], "image")
        h = self.stem(image)
        features = [h] if with_features else None
        for block in self.blocks:
            h = block(h)
            if with_features:
                features.append(h)
        code = self.to_code(h).flatten(1)
        if with_features:
            features = features[-2::-1]  # drop the 4x4 map, order coarse (8 px) to fine
        return code, features
