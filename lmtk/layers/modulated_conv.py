"""Modulated convolution (StyleGAN2) computed by scaling activations instead of weights.

The published form builds one weight tensor per sample and runs a grouped convolution over the batch;
that is slow, and slower still under bf16 autocast. Scaling the input channels by the style, running
one ordinary convolution, and scaling the output channels by the demodulation factor is the same
linear function with a single shared weight, so it batches, runs under autocast and channels_last.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..functional.fir import fir_filter2d, fir_kernel
from .equalized import EqualLinear
from .resample import blur_padding, conv2d_resample

__all__ = ["ModulatedConv2d", "grouped_modulated_conv2d"]


class ModulatedConv2d(nn.Module):
    """Convolution whose input channels are scaled by an affine function of a style vector.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        style_dim: size of the style (latent) vector.
        demodulate: normalise each output channel to unit expected variance.
        upsample: 2x transposed convolution followed by an FIR low-pass (gain 4).
        fir_taps: low-pass taps for ``upsample``.

    Shape:
        - x: ``(B, in_channels, H, W)``; style: ``(B, style_dim)``.
        - output: ``(B, out_channels, H', W')`` with ``H' = 2H`` when upsampling, else ``H``.

    Attributes:
        blur: how an upsampling blur runs: ``"depthwise"`` (default), ``"folded"``, ``"separable"`` or
            ``"subpixel"``
            (set with :func:`lmtk.layers.resample.set_blur`).
    """

    blur: str = "depthwise"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        fir_taps: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.affine = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.demodulate = demodulate
        self.upsample = upsample
        if upsample:
            self.register_buffer("fir", fir_kernel(fir_taps, gain=4.0), persistent=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or style.dim() != 2 or x.shape[0] != style.shape[0]:
            raise ValueError(
                f"ModulatedConv2d expects x (B, C, H, W) and style (B, D), "
                f"got {tuple(x.shape)} and {tuple(style.shape)}"
            )
        s = self.affine(style)
        weight = self.weight * self.scale
        x = x * s[:, :, None, None].to(x.dtype)
        if self.upsample:
            out = conv2d_resample(x, weight, self.fir, up=True, impl=self.blur, cache=self)
        else:
            out = F.conv2d(x, weight.to(x.dtype), padding=self.padding)
        if self.demodulate:
            # sum_{i,k} (w[o,i,k] s[b,i])^2 factorises into (s^2) @ (sum_k w^2)^T, without a per-sample
            # weight; kept in at least fp32 (outside autocast) since it normalises every output channel
            precision = torch.promote_types(s.dtype, torch.float32)
            with torch.autocast(x.device.type, enabled=False):
                energy = s.to(precision).square() @ weight.to(precision).square().sum(dim=(2, 3)).t()
            out = out * (energy + 1e-8).rsqrt()[:, :, None, None].to(out.dtype)
        return out

    def extra_repr(self) -> str:
        out_c, in_c, k, _ = self.weight.shape
        return f"{in_c}, {out_c}, kernel_size={k}, demodulate={self.demodulate}, upsample={self.upsample}"


def grouped_modulated_conv2d(module: ModulatedConv2d, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Reference: the published per-sample-weight grouped convolution, for tests and benchmarks.

    Computes the same function as ``module(x, style)`` the way StyleGAN2's original code does.
    """
    batch, in_c, height, width = x.shape
    out_c, _, k, _ = module.weight.shape
    s = module.affine(style).view(batch, 1, in_c, 1, 1)
    weight = module.scale * module.weight[None] * s
    if module.demodulate:
        weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(batch, out_c, 1, 1, 1)
    x = x.reshape(1, batch * in_c, height, width)
    if module.upsample:
        weight = weight.transpose(1, 2).reshape(batch * in_c, out_c, k, k)
        out = F.conv_transpose2d(x, weight, stride=2, groups=batch)
        out = out.view(batch, out_c, *out.shape[-2:])
        return fir_filter2d(out, module.fir, blur_padding(k, module.fir.shape[-1], up=True))
    out = F.conv2d(x, weight.reshape(batch * out_c, in_c, k, k), padding=module.padding, groups=batch)
    return out.view(batch, out_c, *out.shape[-2:])
