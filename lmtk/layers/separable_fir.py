"""The resampling layers' unfolded blur as shifted multiply-adds, for compiled graphs.

An unfolded StyleGAN2 blur is a depthwise convolution, which ``torch.compile`` leaves as a library call
(cuDNN's grouped kernels on a GPU, slow in bf16 channels_last). Folding it into the neighbouring
convolution (:mod:`lmtk.layers.fused_fir`) removes that call but makes the convolution do four times the
multiply-adds (the encoder's 6x6 stride-2 convolutions). Written as a horizontal and a vertical pass of
shifted multiply-adds, the blur is element-wise work that inductor fuses with the bias, activation and
(de)modulation around it, and the convolutions keep their 3x3 cost. Eagerly the passes are separate
kernels and slower than the depthwise convolution. Parameters and checkpoints are unchanged.

Example:
    >>> import torch
    >>> from lmtk.layers import ConvLayer
    >>> layer = ConvLayer(4, 8, 3, downsample=True).double()
    >>> x = torch.randn(2, 4, 16, 16, dtype=torch.float64)
    >>> reference = layer(x)
    >>> set_separable_fir(layer, True)
    1
    >>> torch.allclose(layer(x), reference, atol=1e-12)
    True
"""

from __future__ import annotations

from torch import nn

__all__ = ["set_separable_fir"]


def set_separable_fir(module: nn.Module, enabled: bool = True) -> int:
    """Switch the separable form of the unfolded blur on or off in every resampling layer under ``module``.

    A layer whose blur is folded (``fused_fir``) keeps the folded form; the separable one applies to the
    others.

    Returns:
        The number of layers switched.
    """
    from .conv_layer import ConvLayer
    from .modulated_conv import ModulatedConv2d

    count = 0
    for layer in module.modules():
        resamples = (isinstance(layer, ModulatedConv2d) and layer.upsample) or (
            isinstance(layer, ConvLayer) and layer.downsample
        )
        if resamples:
            layer.separable_fir = bool(enabled)
            count += 1
    return count
