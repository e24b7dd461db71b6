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

    LIA injects no noise, so by default the strength is a saved constant rather than a parameter: it
    still loads from and exports to StyleGAN2-style checkpoints, and a parameter that never receives
    a gradient would stall DistributedDataParallel. ``learn_noise=True`` makes it learnable;
    ``noise=False`` leaves it out altogether (LIA-X's layers have none in their checkpoints).
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
        learn_noise: bool = False,
        noise: bool = True,
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels, out_channels, kernel_size, style_dim, demodulate, upsample, fir_taps
        )
        if not noise:
            self.noise_strength = None
        elif learn_noise:
            self.noise_strength = nn.Parameter(torch.zeros(1))
        else:
            self.register_buffer("noise_strength", torch.zeros(1))
        self.act = BiasLeakyReLU(out_channels)

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = self.conv(x, style)
        if noise is not None:
            if self.noise_strength is None:
                raise ValueError("this StyledConv was built with noise=False and takes no noise")
            x = x + self.noise_strength * noise
        return self.act(x)
