"""One op for a convolution with 2x resampling around it: :func:`conv2d_resample`, and :func:`set_blur`.

StyleGAN2's resampling layers pair a convolution with a 4x4 FIR low-pass: upsampling is a 3x3 stride-2
transposed conv followed by the blur, downsampling is the blur followed by a stride-2 conv. How the blur
runs is chosen by one argument, ``impl`` (measured in docs/performance.md):

- ``"depthwise"`` (the reference and default): the blur as a depthwise convolution. Fastest on a CPU.
- ``"folded"``: the blur folded into the convolution, one convolution instead of two. Both are linear and
  act per (input, output) channel pair, so a 3x3 transposed conv then the blur is one 6x6 stride-2
  transposed conv; the blur then a 3x3 stride-2 conv one 6x6 stride-2 conv (the 1x1 skip: one 4x4).
  This skips a pass over the activation and cuDNN's slow grouped kernels at the price of more
  multiply-adds (9 instead of 2.25 per output pixel and channel pair when upsampling), which tensor
  cores absorb: the fastest eager form on a GPU. The folded kernel is computed from the stored weights
  (a small matrix product, differentiable), so parameters, checkpoints and gradients are unchanged.
- ``"separable"``: the blur as a horizontal and a vertical pass of shifted multiply-adds, which
  ``torch.compile`` fuses with the bias, activation and (de)modulation around it while the convolutions
  keep their 3x3 cost: the fastest compiled form on a GPU (eagerly the slowest).
- ``"subpixel"``: the upsampling's 3x3 stride-2 transposed conv as an ordinary 2x2 conv that gives its
  four output phases as channels, interleaved by ``pixel_shuffle`` (a sub-pixel convolution), then the
  depthwise blur; downsampling as ``"depthwise"``. 16 multiply-adds per input pixel and channel pair
  instead of 9, but no transposed convolution, which int8 backends lack (onnxruntime runs it in float):
  the form of the int8 ONNX export (docs/deploy.md).

Every form computes the same function: exactly in float64, to rounding in float32 (tests/layers).

Example:
    >>> import torch
    >>> from lmtk.layers import ModulatedConv2d
    >>> conv = ModulatedConv2d(4, 4, 3, style_dim=8, upsample=True).double()
    >>> x, style = torch.randn(2, 4, 8, 8, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64)
    >>> reference = conv(x, style)
    >>> set_blur(conv, "folded")
    1
    >>> torch.allclose(conv(x, style), reference, atol=1e-12)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ..functional.fir import fir_filter2d

__all__ = [
    "BLUR_IMPLS",
    "blur_padding",
    "conv2d_resample",
    "fold_fir",
    "fold_fir_matrix",
    "set_blur",
    "subpixel_weight",
]

BLUR_IMPLS = ("depthwise", "folded", "separable", "subpixel")
T = TypeVar("T")


def blur_padding(kernel_size: int, fir_size: int, up: bool) -> tuple[int, int]:
    """The blur's zero padding (before, after) around a ``kernel_size`` convolution, as StyleGAN2 pads it.

    Upsampling blurs the transposed conv's ``2H + k - 2`` output back to ``2H``; downsampling pads the
    input so the stride-2 conv gives ``H / 2``.
    """
    if up:
        p = fir_size - 2 - (kernel_size - 1)
        return (p + 1) // 2 + 1, p // 2 + 1
    p = fir_size - 2 + kernel_size - 1
    return (p + 1) // 2, p // 2


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


def _cached(owner: nn.Module | None, key: tuple, compute: Callable[[], T]) -> T:
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
    entry = owner.__dict__.get("_folded_blur_cache")
    if entry is None or entry[0] != full_key:
        entry = (full_key, compute())
        owner.__dict__["_folded_blur_cache"] = entry  # one entry: no growth, not in the state dict
    return entry[1]


def conv2d_resample(
    x: torch.Tensor,
    weight: torch.Tensor,
    fir: torch.Tensor,
    *,
    up: bool = False,
    down: bool = False,
    impl: str = "depthwise",
    bias: torch.Tensor | None = None,
    cache: nn.Module | None = None,
) -> torch.Tensor:
    """A convolution with a 2x FIR resampling around it, the blur run as ``impl`` says.

    ``up``: ``blur(conv_transpose2d(x, weight, stride=2))`` (the blur with the upsampling gain);
    ``down``: ``conv2d(blur(x), weight, bias, stride=2)``. The blur's padding follows from the sizes
    (:func:`blur_padding`), as in StyleGAN2.

    Args:
        x: ``(B, I, H, W)``.
        weight: ``(O, I, k, k)``, already scaled (the ordinary convolution layout in both directions).
        fir: ``(K, K)``.
        up: 2x upsampling (exactly one of ``up`` and ``down``).
        down: 2x downsampling.
        impl: one of :data:`BLUR_IMPLS` (see the module's docstring).
        bias: optional ``(O,)``, downsampling only.
        cache: the layer whose ``weight`` parameter ``weight`` is computed from; when given, a folded
            kernel is kept on it while no gradient is needed (inference).

    Returns:
        ``(B, O, 2H, 2W)`` up (``x``'s dtype), ``(B, O, H / 2, W / 2)`` down.
    """
    if up == down:
        raise ValueError(f"conv2d_resample resamples one way: give up=True or down=True, got {up=}, {down=}")
    if impl not in BLUR_IMPLS:
        raise ValueError(f"impl must be one of {BLUR_IMPLS}, got {impl!r}")
    if up and bias is not None:
        raise ValueError("conv2d_resample takes a bias when downsampling only (add it after upsampling)")
    pad0, pad1 = blur_padding(weight.shape[-1], fir.shape[-1], up)
    if up:
        weight = weight.transpose(0, 1)  # the transposed convolution's (I, O, k, k)
        if impl == "folded":
            return _folded_upsample(x, weight, fir, (pad0, pad1), cache)
        if impl == "subpixel":
            out = _subpixel_transposed_conv(x, weight, cache)
            # an odd kernel's result ends in a row and column of zeros: they stand for blur padding
            extra = weight.shape[-1] % 2
            if extra > pad1:
                out = out[..., :-extra, :-extra]
            return fir_filter2d(out, fir, (pad0, max(pad1 - extra, 0)))
        out = F.conv_transpose2d(x, weight.to(x.dtype), stride=2)
        return fir_filter2d(out, fir, (pad0, pad1), separable=impl == "separable")
    if impl == "folded":
        # the blur is a true convolution (flipped taps); a correlation with the flipped fir composes with
        # the correlation of conv2d into the full convolution of the weight with the flipped fir
        folded = _cached(cache, ("down",), lambda: fold_fir(weight, fir.flip(-2, -1)).to(weight.dtype))
        if pad0 == pad1:
            return F.conv2d(x, folded, bias, stride=2, padding=pad0)
        return F.conv2d(F.pad(x, (pad0, pad1, pad0, pad1)), folded, bias, stride=2)
    x = fir_filter2d(x, fir, (pad0, pad1), separable=impl == "separable")
    return F.conv2d(x, weight, bias, stride=2)


def _folded_upsample(
    x: torch.Tensor, weight: torch.Tensor, fir: torch.Tensor, fir_padding: tuple[int, int], cache
) -> torch.Tensor:
    """The transposed conv ``weight`` ``(I, O, k, k)`` and the blur as one transposed convolution."""
    pad0, pad1 = fir_padding
    padding = fir.shape[-1] - 1 - pad0
    folded = _cached(cache, ("up", x.dtype), lambda: fold_fir(weight, fir).to(x.dtype))
    # the blur's padding after the image may differ from the one before: extend or crop the end
    extra = pad1 - pad0
    out = F.conv_transpose2d(x, folded, stride=2, padding=padding, output_padding=max(extra, 0))
    return out[..., : out.shape[-2] + extra, : out.shape[-1] + extra] if extra < 0 else out


def subpixel_weight(weight: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``conv_transpose2d(x, weight, stride=2)`` as an ordinary conv whose output channels are its phases.

    Along each axis the transposed conv gives ``out[2m + r] = sum_t x[t] weight[2m + r - 2t]``: output
    phase ``r`` is an ordinary correlation of ``x`` with every other tap of ``weight``. Each phase becomes
    ``T`` taps of one kernel (zero where a phase has fewer), its channels ordered for ``pixel_shuffle``.

    Args:
        weight: ``(I, O, n, n)``, the transposed conv's kernel.

    Returns:
        The ``(4 * O, I, T, T)`` kernel and the padding with which
        ``pixel_shuffle(conv2d(x, kernel, padding=padding), 2)`` is the transposed conv's ``2H + n - 2``
        rows and columns, followed by a row and column of zeros when ``n`` is odd.
    """
    in_c, out_c, n, _ = weight.shape
    size = (n + 1) // 2
    # phase r reads input t = m + d through tap r - 2d, for d from -(size - 1) to 0
    taps = torch.tensor([[r - 2 * d for d in range(1 - size, 1)] for r in (0, 1)])
    taps = torch.where(taps < n, taps, n).to(weight.device)  # n: a zero tap
    padded = F.pad(weight, (0, 1, 0, 1))
    phases = padded[:, :, taps][..., taps]  # (I, O, 2, T, 2, T): rows (r_y, t_y), columns (r_x, t_x)
    # output phase rows m = 0 ... H + size - 2 read inputs m - (size - 1) ... m: padding size - 1 each side
    return phases.permute(1, 2, 4, 0, 3, 5).reshape(4 * out_c, in_c, size, size), size - 1


def _subpixel_transposed_conv(x: torch.Tensor, weight: torch.Tensor, cache) -> torch.Tensor:
    """``conv_transpose2d(x, weight, stride=2)`` (``weight`` ``(I, O, k, k)``) as a conv and a
    ``pixel_shuffle``; the result may end in zero rows and columns (:func:`subpixel_weight`)."""
    phases, padding = _cached(cache, ("subpixel",), lambda: subpixel_weight(weight))
    return F.pixel_shuffle(F.conv2d(x, phases.to(x.dtype), padding=padding), 2)


def set_blur(module: nn.Module, impl: str = "depthwise") -> int:
    """Run the blur of every resampling layer under ``module`` as ``impl`` (see :data:`BLUR_IMPLS`).

    Args:
        module: any module (a whole LIA model, its generator, one layer).
        impl: ``"depthwise"`` (the reference, what a new layer runs), ``"folded"`` or ``"separable"``.

    Returns:
        The number of layers switched.
    """
    from .conv_layer import ConvLayer
    from .modulated_conv import ModulatedConv2d

    if impl not in BLUR_IMPLS:
        raise ValueError(f"blur must be one of {BLUR_IMPLS}, got {impl!r}")
    count = 0
    for layer in module.modules():
        if (isinstance(layer, ModulatedConv2d) and layer.upsample) or (
            isinstance(layer, ConvLayer) and layer.downsample
        ):
            layer.blur = impl
            count += 1
    return count
