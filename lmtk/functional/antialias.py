"""Anti-aliased downsampling: Gaussian low-pass, then nearest subsampling.

This is the image pyramid filter of FOMM (``AntiAliasInterpolation2d``) that LIA's perceptual loss uses:
for a scale ``s < 1`` the Gaussian has ``sigma = (1 / s - 1) / 2`` and ``2 * round(4 * sigma) + 1`` taps,
the image is zero-padded by half the kernel, blurred, and every ``1 / s``-th pixel is kept (nearest
interpolation with ``scale_factor=s``). Scale 1 returns the input unchanged.

The Gaussian is separable, so the blur runs as two depthwise 1-D convolutions (``2k`` instead of ``k**2``
taps per pixel; the 0.125 level has ``k = 29``). With zero padding both forms give the same result.

Example:
    >>> image = torch.rand(2, 3, 64, 64)
    >>> tuple(antialias_downsample(image, 0.25).shape)
    (2, 3, 16, 16)
    >>> antialias_downsample(image, 1.0) is image
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import check_shape

__all__ = ["antialias_kernel1d", "antialias_downsample"]

_PADDING_MODES = ("constant", "reflect", "replicate", "circular")


def _check_scale(scale: float) -> None:
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"scale must be in (0, 1], got {scale}")


def antialias_kernel1d(
    scale: float, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """The normalised 1-D Gaussian used to downsample by ``scale``, shape ``(K,)`` with odd ``K``.

    ``sigma = (1 / scale - 1) / 2`` and ``K = 2 * round(4 * sigma) + 1``. Not defined for ``scale == 1``
    (no filtering happens there).
    """
    _check_scale(scale)
    if scale == 1.0:
        raise ValueError("scale 1 needs no anti-aliasing kernel")
    sigma = (1.0 / scale - 1.0) / 2.0
    size = 2 * round(sigma * 4) + 1
    # Built on the target device (no host-to-device copy per call), in float32 unless float64 is asked.
    work_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    x = torch.arange(size, device=device, dtype=work_dtype) - (size - 1) / 2
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    return kernel if dtype is None else kernel.to(dtype)


def antialias_downsample(
    image: Tensor, scale: float, *, kernel: Tensor | None = None, padding_mode: str = "constant"
) -> Tensor:
    """Blur ``image`` with a Gaussian matched to ``scale``, then subsample it by nearest interpolation.

    Args:
        image: ``(B, C, H, W)``.
        scale: output size factor in ``(0, 1]``; 1 returns ``image`` itself.
        kernel: optional precomputed :func:`antialias_kernel1d` for ``scale`` (a module can cache it as a
            buffer); cast to the image's device and dtype.
        padding_mode: ``"constant"`` (zeros, as FOMM and LIA do; the border darkens slightly) or
            ``"reflect"``, ``"replicate"``, ``"circular"``.

    Returns:
        ``(B, C, floor(H * scale), floor(W * scale))``.
    """
    check_shape(image, ["B", "C", "H", "W"], "image")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
    _check_scale(scale)
    if scale == 1.0:
        return image
    if kernel is None:
        kernel = antialias_kernel1d(scale, device=image.device, dtype=image.dtype)
    if kernel.dim() != 1 or kernel.numel() % 2 == 0:
        raise ValueError(f"kernel must be 1-D with an odd length, got shape {tuple(kernel.shape)}")
    kernel = kernel.to(device=image.device, dtype=image.dtype)
    channels, size = image.shape[1], kernel.numel()
    pad = size // 2
    out = F.pad(image, (pad, pad, pad, pad), mode=padding_mode)
    out = F.conv2d(out, kernel.view(1, 1, 1, size).repeat(channels, 1, 1, 1), groups=channels)
    out = F.conv2d(out, kernel.view(1, 1, size, 1).repeat(channels, 1, 1, 1), groups=channels)
    return F.interpolate(out, scale_factor=scale, mode="nearest")
