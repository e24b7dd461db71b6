"""The "w/o D_m" ablation (LIA, Table 4): the motion network outputs the latent path itself."""

from __future__ import annotations

import torch
from torch import nn

from ...functional.checks import check_shape
from ...registry import motion_bases

__all__ = ["DirectPath"]


@motion_bases.register("lmtk.DirectPath.v1")
class DirectPath(nn.Module):
    """No basis: magnitudes are the ``(B, latent_dim)`` path, so there are no directions to inspect."""

    def __init__(self, latent_dim: int = 512) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_magnitudes = latent_dim

    def directions(self) -> None:
        return None

    def forward(self, magnitudes: torch.Tensor) -> torch.Tensor:
        check_shape(magnitudes, ["B", self.latent_dim], "magnitudes")
        return magnitudes
