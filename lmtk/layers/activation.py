"""Bias + leaky ReLU with StyleGAN's sqrt(2) gain."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BiasLeakyReLU", "bias_leaky_relu"]


def bias_leaky_relu(
    x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float = 0.2, gain: float = math.sqrt(2)
) -> torch.Tensor:
    """``leaky_relu(x + bias) * gain``; ``bias`` of shape ``(C,)`` broadcasts over dim 1.

    The gain keeps the activations' second moment roughly unchanged through the layer.
    """
    if bias is not None:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        x = x + bias.view(shape).to(x.dtype)
    return F.leaky_relu(x, negative_slope) * gain


class BiasLeakyReLU(nn.Module):
    """Learned per-channel bias, leaky ReLU and gain (``FusedLeakyReLU`` in StyleGAN2)."""

    def __init__(self, channels: int, bias: bool = True, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bias_leaky_relu(x, self.bias, self.negative_slope)
