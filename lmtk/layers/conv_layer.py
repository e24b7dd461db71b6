"""Convolution blocks of StyleGAN2's encoder and discriminator: a conv layer and a residual block."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..functional.fir import fir_kernel
from .activation import BiasLeakyReLU
from .equalized import EqualConv2d
from .resample import conv2d_resample

__all__ = ["ConvLayer", "ResBlock"]


class ConvLayer(nn.Module):
    """Equalized conv, optionally preceded by an FIR low-pass for 2x downsampling, and an activation.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        downsample: halve the resolution (FIR filter, then a stride-2 convolution).
        fir_taps: the low-pass filter taps.
        bias: learn a bias (inside the activation when ``activate``).
        activate: apply bias + leaky ReLU.

    Attributes:
        blur: how a downsampling blur runs: ``"depthwise"`` (default), ``"folded"``, ``"separable"`` or
            ``"subpixel"`` (here the same as ``"depthwise"``)
            (set with :func:`lmtk.layers.resample.set_blur`).
    """

    blur: str = "depthwise"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        downsample: bool = False,
        fir_taps: Sequence[float] = (1, 3, 3, 1),
        bias: bool = True,
        activate: bool = True,
    ) -> None:
        super().__init__()
        self.downsample = downsample
        if downsample:
            self.register_buffer("fir", fir_kernel(fir_taps), persistent=False)
        padding = 0 if downsample else kernel_size // 2
        self.conv = EqualConv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=2 if downsample else 1,
            padding=padding,
            bias=bias and not activate,
        )
        self.act = BiasLeakyReLU(out_channels, bias=bias) if activate else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample:
            conv = self.conv
            weight = conv.weight * conv.scale
            x = conv2d_resample(x, weight, self.fir, down=True, impl=self.blur, bias=conv.bias, cache=conv)
        else:
            x = self.conv(x)
        return self.act(x) if self.act is not None else x


class ResBlock(nn.Module):
    """Two 3x3 convs (the second downsampling) plus a 1x1 downsampling skip, summed / sqrt(2).

    ``widen_first``: the first conv changes the channels (LIA-X's encoder) instead of the second
    (StyleGAN2's discriminator and LIA's encoder).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        fir_taps: Sequence[float] = (1, 3, 3, 1),
        widen_first: bool = False,
    ) -> None:
        super().__init__()
        middle = out_channels if widen_first else in_channels
        self.conv1 = ConvLayer(in_channels, middle, 3)
        self.conv2 = ConvLayer(middle, out_channels, 3, downsample=True, fir_taps=fir_taps)
        self.skip = ConvLayer(
            in_channels, out_channels, 1, downsample=True, fir_taps=fir_taps, bias=False, activate=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)
