"""Finite-impulse-response (FIR) resampling filters as depthwise convolutions.

StyleGAN2's ``upfirdn2d`` (zero-insert, pad, filter, subsample) is expressed here as one depthwise
``conv2d`` / ``conv_transpose2d`` call per filter, which is what cuDNN and channels_last handle best in
eager mode. ``fir_filter2d(..., separable=True)`` instead writes the blur as two passes of shifted
multiply-adds: slow eagerly, but ``torch.compile`` fuses them into one kernel with the surrounding
element-wise work, where a depthwise convolution stays a separate library call.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .checks import check_shape

__all__ = ["fir_kernel", "fir_filter2d", "fir_upsample2d", "fir_downsample2d"]


def fir_kernel(taps: Sequence[float] = (1, 3, 3, 1), gain: float = 1.0) -> torch.Tensor:
    """A separable 2-D FIR kernel ``outer(taps, taps)`` normalised to sum ``gain``.

    Args:
        taps: 1-D filter taps.
        gain: sum of the kernel; 4 for a 2x upsampling filter, which keeps the mean brightness.

    Returns:
        float32 kernel of shape ``(K, K)``.

    Example:
        >>> fir_kernel((1, 3, 3, 1)).sum().item()
        1.0
    """
    k = torch.tensor(list(taps), dtype=torch.float32)
    k = k[None, :] * k[:, None]
    k /= k.sum()
    return k * gain if gain != 1.0 else k


def _depthwise(kernel: torch.Tensor, channels: int, like: torch.Tensor) -> torch.Tensor:
    kernel = kernel.to(device=like.device, dtype=like.dtype)
    return kernel.flip(0, 1)[None, None].expand(channels, 1, *kernel.shape)


def fir_filter2d(
    x: torch.Tensor, kernel: torch.Tensor, padding: tuple[int, int], separable: bool = False
) -> torch.Tensor:
    """Filter each channel with ``kernel`` after padding ``padding[0]`` before and ``padding[1]`` after.

    Args:
        x: ``(B, C, H, W)``.
        kernel: ``(K, K)``.
        padding: zero padding before and after, on both spatial axes.
        separable: run it as a horizontal then a vertical pass of shifted multiply-adds (computed in at
            least float32) instead of a depthwise convolution; ``kernel`` must then be rank one, as
            :func:`fir_kernel`'s are. Meant for compiled graphs (see the module's docstring).

    Returns:
        ``(B, C, H + p0 + p1 - K + 1, W + p0 + p1 - K + 1)``.

    Example:
        >>> x, kernel = torch.randn(1, 2, 8, 8, dtype=torch.float64), fir_kernel((1, 3, 3, 1))
        >>> torch.allclose(fir_filter2d(x, kernel, (2, 1), separable=True), fir_filter2d(x, kernel, (2, 1)))
        True
    """
    check_shape(x, ["B", "C", "H", "W"], "x")
    pad0, pad1 = padding
    if separable:
        return _separable_filter2d(x, kernel, pad0, pad1)
    weight = _depthwise(kernel, x.shape[1], x)
    if pad0 == pad1:
        return F.conv2d(x, weight, padding=pad0, groups=x.shape[1])
    x = F.pad(x, (pad0, pad1, pad0, pad1))
    return F.conv2d(x, weight, groups=x.shape[1])


def _separable_filter2d(x: torch.Tensor, kernel: torch.Tensor, pad0: int, pad1: int) -> torch.Tensor:
    # a rank-one kernel is outer(column sums, row sums) / total; the filter is a true convolution, so each
    # pass takes the taps reversed. Tensor taps: reading them as Python numbers would sync with a GPU
    precision = torch.promote_types(x.dtype, torch.float32)
    kernel = kernel.to(device=x.device, dtype=precision)
    along_width = (kernel.sum(0) / kernel.sum()).flip(0)
    along_height = kernel.sum(1).flip(0)
    taps = kernel.shape[-1]
    padded = F.pad(x.to(precision), (pad0, pad1, pad0, pad1))
    height, width = padded.shape[-2] - taps + 1, padded.shape[-1] - taps + 1
    rows = sum(along_width[i] * padded[..., i : i + width] for i in range(taps))
    out = sum(along_height[i] * rows[..., i : i + height, :] for i in range(taps))
    return out.to(x.dtype)


def fir_upsample2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """2x upsampling: zero insertion followed by ``kernel`` (gain 4), as one transposed convolution.

    Same result as StyleGAN2's ``Upsample`` (``upfirdn2d`` with ``up=2`` and pad ``(K/2, K/2 - 1)``).

    Args:
        x: ``(B, C, H, W)``.
        kernel: ``(K, K)`` with even ``K``.

    Returns:
        ``(B, C, 2H, 2W)``.
    """
    size = kernel.shape[0]
    if size % 2:
        raise ValueError(f"fir_upsample2d needs an even kernel size, got {size}")
    weight = kernel.to(device=x.device, dtype=x.dtype)[None, None].expand(x.shape[1], 1, size, size)
    return F.conv_transpose2d(x, weight, stride=2, padding=(size - 2) // 2, groups=x.shape[1])


def fir_downsample2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """2x downsampling: ``kernel`` followed by taking every second pixel, as one strided convolution.

    Args:
        x: ``(B, C, H, W)``.
        kernel: ``(K, K)`` with even ``K``.

    Returns:
        ``(B, C, H/2, W/2)``.
    """
    pad = (kernel.shape[0] - 2 + 1) // 2
    weight = _depthwise(kernel, x.shape[1], x)
    return F.conv2d(x, weight, stride=2, padding=pad, groups=x.shape[1])
