"""FIR blurs folded into the neighbouring convolution: one convolution instead of two.

StyleGAN2's resampling layers pair a convolution with a 4x4 FIR low-pass. Both are linear and act per
(input, output) channel pair, so they compose into a single larger kernel:

- upsampling: a 3x3 stride-2 transposed conv followed by the 4x4 blur (padding 1) is one 6x6 stride-2
  transposed conv with padding 2;
- downsampling: the 4x4 blur (padding 2) followed by a 3x3 stride-2 conv is one 6x6 stride-2 conv with
  padding 2; the 1x1 skip after the blur (padding 1) is one 4x4 stride-2 conv with padding 1.

The blur as a depthwise convolution reads and writes the whole activation once more and runs on cuDNN's
slow grouped kernels; the folded form skips that pass at the price of more multiply-adds in the convolution
(9 instead of 2.25 per output pixel and channel pair when upsampling), which tensor cores absorb.

The folded kernel is computed from the stored weights on every call (a small matrix product), so this is
a reparameterisation at run time: parameters, checkpoints and gradients are those of the unfused layers.
A folded 6x6 transposed conv can also run as four 3x3 convolutions, one per output phase, packed into one
ordinary convolution with four times the output channels and a pixel shuffle (``upsample="phase"``).

Example:
    >>> import torch
    >>> from lmtk.layers import ModulatedConv2d
    >>> conv = ModulatedConv2d(4, 4, 3, style_dim=8, upsample=True).double()
    >>> x, style = torch.randn(2, 4, 8, 8, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64)
    >>> reference = conv(x, style)
    >>> _ = set_fused_fir(conv, True)
    >>> torch.allclose(conv(x, style), reference, atol=1e-12)
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "UPSAMPLE_MODES",
    "fold_fir_matrix",
    "fold_fir",
    "fused_upsample_conv2d",
    "fused_downsample_conv2d",
    "set_fused_fir",
]

UPSAMPLE_MODES = ("transpose", "phase")


def fold_fir_matrix(kernel_size: int, fir: torch.Tensor) -> torch.Tensor:
    """The linear map from a ``k x k`` kernel to its full 2-D convolution with ``fir``.

    Args:
        kernel_size: ``k``.
        fir: ``(K, K)``.

    Returns:
        ``(k * k, n * n)`` with ``n = k + K - 1``; row ``i`` is the convolution of the ``i``-th unit kernel.
    """
    k, size = kernel_size, fir.shape[-1]
    # a unit impulse at (r, c) convolved with fir is fir placed at (r, c): copies only, exact in any
    # precision (a convolution here could round the taps to TF32)
    matrix = fir.new_zeros(k, k, k + size - 1, k + size - 1)
    for r in range(k):
        for c in range(k):
            matrix[r, c, r : r + size, c : c + size] = fir
    return matrix.view(k * k, (k + size - 1) ** 2)


def fold_fir(weight: torch.Tensor, fir: torch.Tensor) -> torch.Tensor:
    """Full 2-D convolution of every ``(k, k)`` slice of ``weight`` with ``fir``.

    Computed as one matrix product (no grouped or tiny-image convolution), in at least float32 and
    outside autocast, so the folded kernel is as exact as the weight.

    Args:
        weight: ``(A, B, k, k)``.
        fir: ``(K, K)``.

    Returns:
        ``(A, B, k + K - 1, k + K - 1)`` in ``weight``'s dtype promoted to at least float32.
    """
    a, b, k, _ = weight.shape
    n = k + fir.shape[-1] - 1
    precision = torch.promote_types(weight.dtype, torch.float32)
    with torch.autocast(weight.device.type, enabled=False):
        matrix = fold_fir_matrix(k, fir.to(device=weight.device, dtype=precision))
        return (weight.to(precision).reshape(a * b, k * k) @ matrix).view(a, b, n, n)


def _cached(owner: nn.Module | None, key: tuple, compute) -> torch.Tensor:
    """``compute()``, kept on ``owner`` while its ``weight`` is unchanged and no gradient is needed.

    Inference calls the same layer with the same weights again and again: folding once saves a matrix
    product and a reordering copy per call, which matter on the CPU. The entry is keyed on the weight's
    storage and version counter (both change when the weight is trained, loaded or moved), never on
    values, so checking it costs no device synchronisation. Training and compiled graphs recompute.
    """
    if owner is None or torch.compiler.is_compiling():
        return compute()
    weight = owner.weight
    if torch.is_grad_enabled() and weight.requires_grad:
        return compute()
    full_key = (*key, weight.data_ptr(), weight._version, weight.device)
    entry = owner.__dict__.get("_fused_fir_cache")
    if entry is None or entry[0] != full_key:
        entry = (full_key, compute())
        owner.__dict__["_fused_fir_cache"] = entry  # one entry: no growth, not in the state dict
    return entry[1]


def _phase_weight(folded: torch.Tensor) -> torch.Tensor:
    """``(I, O, 6, 6)`` transposed-conv kernel (padding 2) -> ``(4 O, I, 3, 3)`` conv kernel per output phase.

    Output pixel ``2m + r`` of the transposed conv is ``sum_d x[m + d] V[r + 2 - 2d]`` for ``d`` in -1..1:
    a 3x3 correlation (padding 1) with the taps ``V[r::2]`` reversed. Channels are ordered ``(o, ry, rx)``,
    which is what ``pixel_shuffle(2)`` expects.
    """
    i, o = folded.shape[:2]
    phases = folded.view(i, o, 3, 2, 3, 2).flip(2, 4)  # (i, o, a, ry, b, rx)
    return phases.permute(1, 3, 5, 0, 2, 4).reshape(4 * o, i, 3, 3)


def fused_upsample_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    fir: torch.Tensor,
    fir_padding: tuple[int, int],
    mode: str = "transpose",
    cache: nn.Module | None = None,
) -> torch.Tensor:
    """``fir_filter2d(conv_transpose2d(x, weight, stride=2), fir, fir_padding)`` as one convolution.

    Args:
        x: ``(B, I, H, W)``.
        weight: ``(I, O, k, k)``, the transposed-convolution layout.
        fir: ``(K, K)`` (with the upsampling gain).
        fir_padding: the blur's zero padding before and after.
        mode: ``"transpose"`` (one transposed conv) or ``"phase"`` (one conv with ``4 O`` outputs and a
            pixel shuffle; needs ``k + K - 1 == 6`` and a symmetric padding of 1, else it falls back to
            ``"transpose"``).
        cache: the layer whose ``weight`` parameter ``weight`` is computed from; when given, the folded
            kernel is kept on it while no gradient is needed (see :func:`_cached`).

    Returns:
        ``(B, O, H', W')`` in ``x``'s dtype, the same size as the unfused result.
    """
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"mode must be one of {UPSAMPLE_MODES}, got {mode!r}")
    pad0, pad1 = fir_padding
    padding = fir.shape[-1] - 1 - pad0
    phase = mode == "phase" and weight.shape[-1] + fir.shape[-1] - 1 == 6 and padding == 2 and pad0 == pad1

    def kernel() -> torch.Tensor:
        folded = fold_fir(weight, fir)
        return (_phase_weight(folded) if phase else folded).to(x.dtype)

    folded = _cached(cache, (mode, x.dtype), kernel)
    if phase:
        return F.pixel_shuffle(F.conv2d(x, folded, padding=1), 2)
    # the blur's padding after the image may differ from the one before: extend or crop the end
    extra = pad1 - pad0
    out = F.conv_transpose2d(x, folded, stride=2, padding=padding, output_padding=max(extra, 0))
    return out[..., : out.shape[-2] + extra, : out.shape[-1] + extra] if extra < 0 else out


def fused_downsample_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    fir: torch.Tensor,
    fir_padding: tuple[int, int],
    bias: torch.Tensor | None = None,
    cache: nn.Module | None = None,
) -> torch.Tensor:
    """``conv2d(fir_filter2d(x, fir, fir_padding), weight, bias, stride=2)`` as one strided convolution.

    Args:
        x: ``(B, I, H, W)``.
        weight: ``(O, I, k, k)`` (already scaled).
        fir: ``(K, K)``.
        fir_padding: the blur's zero padding before and after.
        bias: optional ``(O,)``.
        cache: as for :func:`fused_upsample_conv2d`.

    Returns:
        ``(B, O, H', W')``, the same size as the unfused result.
    """
    # the blur is a true convolution (flipped taps); a correlation with the flipped fir composes with the
    # correlation of conv2d into the full convolution of the weight with the flipped fir
    folded = _cached(cache, ("down",), lambda: fold_fir(weight, fir.flip(-2, -1)).to(weight.dtype))
    pad0, pad1 = fir_padding
    if pad0 == pad1:
        return F.conv2d(x, folded, bias, stride=2, padding=pad0)
    return F.conv2d(F.pad(x, (pad0, pad1, pad0, pad1)), folded, bias, stride=2)


def set_fused_fir(module: nn.Module, upsample: bool | str = True, downsample: bool | None = None) -> int:
    """Switch the folded blur on or off in every resampling layer under ``module``.

    Args:
        module: any module (a whole LIA model, its generator, one layer).
        upsample: for upsampling modulated convs: False (unfused), True or ``"transpose"``, or ``"phase"``.
        downsample: for downsampling conv layers; None follows ``upsample`` (on or off).

    Returns:
        The number of layers switched.
    """
    from .conv_layer import ConvLayer
    from .modulated_conv import ModulatedConv2d

    if upsample is True:
        upsample = "transpose"
    if upsample not in (False, *UPSAMPLE_MODES):
        raise ValueError(f"upsample must be False, True or one of {UPSAMPLE_MODES}, got {upsample!r}")
    downsample = bool(upsample) if downsample is None else bool(downsample)
    count = 0
    for layer in module.modules():
        if isinstance(layer, ModulatedConv2d) and layer.upsample:
            layer.fused_fir = upsample
            count += 1
        elif isinstance(layer, ConvLayer) and layer.downsample:
            layer.fused_fir = downsample
            count += 1
    return count
