"""Flow warper: backward-warp features by a flow field and mask them (LIA eq. 5)."""

from __future__ import annotations

import torch
from torch import nn

from ...functional.warp import base_grid, flow_warp
from ...registry import warpers

__all__ = ["FlowWarper"]


@warpers.register("lmtk.FlowWarper.v1")
class FlowWarper(nn.Module):
    """``x' = T(flow, x) * mask`` with bilinear sampling on a grid cached per shape, device and dtype.

    Args:
        align_corners: ``False`` reproduces the published LIA exactly (its checkpoints need it);
            ``True`` makes a zero flow the identity and 2 / (W - 1) exactly one pixel.

    Under autocast the sampling runs in at least float32 (see :func:`~lmtk.functional.warp.flow_warp`).
    """

    def __init__(self, align_corners: bool = False) -> None:
        super().__init__()
        self.align_corners = align_corners
        self._grids: dict[tuple, torch.Tensor] = {}

    def grid(self, like: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            # inside a compiled graph the grid is fused into the sampling; a cache would only add guards
            return base_grid(like.shape[-2], like.shape[-1], like)
        key = (like.shape[-2], like.shape[-1], like.device, like.dtype)
        if key not in self._grids:
            self._grids[key] = base_grid(like.shape[-2], like.shape[-1], like)
        return self._grids[key]

    def forward(
        self, features: torch.Tensor, flow: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """features ``(B, C, H, W)``, flow ``(B, 2, H, W)``, mask ``(B, 1, H, W)`` -> ``(B, C, H, W)``."""
        warped = flow_warp(features, flow, self.grid(flow), self.align_corners)
        if features.stride(1) == 1 < features.shape[1]:
            # grid_sample always returns NCHW; hand channels_last on rather than convert every later op
            warped = warped.contiguous(memory_format=torch.channels_last)
        return warped * mask if mask is not None else warped

    def extra_repr(self) -> str:
        return f"align_corners={self.align_corners}"
