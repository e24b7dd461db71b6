"""StyleGAN2 synthesis layer: modulated convolution, optional noise, bias and leaky ReLU."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .activation import BiasLeakyReLU
from .modulated_conv import ModulatedConv2d

__all__ = ["StyledConv"]


class StyledConv(nn.Module):
    """Modulated conv -> ``x + strength * noise`` (only when noise is given) -> bias + leaky ReLU.

    LIA injects no noise at inference or training; the learnable strength is kept so StyleGAN2-style
    checkpoints load and so a caller can pass noise.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        demodulate: bool = True,
        fir_taps: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels, out_channels, kernel_size, style_dim, demodulate, upsample, fir_taps
        )
        self.noise_strength = nn.Parameter(torch.zeros(1))
        self.act = BiasLeakyReLU(out_channels)

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = self.conv(x, style)
        if noise is not None:
            x = x + self.noise_strength * noise
        return self.act(x)
