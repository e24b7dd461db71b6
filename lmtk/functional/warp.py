"""Backward warping of feature maps by dense flow fields (eq. 5 of the LIA paper)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.geometry import create_meshgrid

from .checks import check_shape
from .precision import cast_keeping_broadcast, full_precision

__all__ = ["base_grid", "flow_warp"]


def base_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Normalised sampling grid ``linspace(-1, 1)`` on both axes, ``(1, H, W, 2)`` in ``(x, y)`` order.

    Made on ``like``'s device and dtype so no host-to-device copy happens in the loop.
    """
    return create_meshgrid(height, width, normalized_coordinates=True, device=like.device, dtype=like.dtype)


def flow_warp(
    features: torch.Tensor,
    flow: torch.Tensor,
    grid: torch.Tensor | None = None,
    align_corners: bool = False,
    precise: bool = True,
) -> torch.Tensor:
    """Sample ``features`` at ``grid + flow`` (bilinear, zero padding).

    Args:
        features: ``(B, C, H, W)``.
        flow: ``(B, 2, H, W)`` displacement in normalised coordinates (x first); 2 / (W - 1) is one
            pixel when ``align_corners`` is True.
        grid: optional cached :func:`base_grid` of shape ``(1, H, W, 2)``.
        align_corners: passed to ``grid_sample``. The published LIA samples its ``linspace(-1, 1)``
            grid with ``False`` (a zoom of ``H / (H - 1)``), and its checkpoints depend on that; with
            ``True`` a zero flow is the exact identity.
        precise: sample in at least float32 (reduced-precision features are cast there and back);
            False samples in the features' dtype, as plain autocast would.

    Returns:
        ``(B, C, H, W)`` warped features.

    Example:
        >>> x = torch.rand(1, 3, 8, 8)
        >>> torch.allclose(flow_warp(x, torch.zeros(1, 2, 8, 8), align_corners=True), x, atol=1e-6)
        True
    """
    check_shape(features, ["B", "C", "H", "W"], "features")
    check_shape(flow, ["B", 2, "H", "W"], "flow")
    if features.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"features {tuple(features.shape)} and flow {tuple(flow.shape)} differ in size")
    if grid is None:
        grid = base_grid(flow.shape[2], flow.shape[3], flow)
    # Sampling points in at least float32: in bf16 the coordinates near the border are 2**-7 apart,
    # a whole pixel at 256 px. Reduced-precision features are sampled in float32 and cast back.
    with full_precision(features, precise) as precision:
        sampling = (grid + flow.permute(0, 2, 3, 1)).to(precision)
        source = cast_keeping_broadcast(features, precision)  # one source's features over a batch
        warped = F.grid_sample(source, sampling, "bilinear", "zeros", align_corners)
    return warped.to(features.dtype) if precise else warped
