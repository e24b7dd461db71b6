"""The motion network: a stack of linear layers from a latent code to motion magnitudes."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import EqualLinear

__all__ = ["MotionMLP"]


class MotionMLP(nn.Module):
    """``num_layers`` equalized linear layers mapping a code ``(B, D)`` to ``(B, out_dim)``.

    The published LIA uses five layers with no activation between them (so the map is affine); set
    ``activation="leaky_relu"`` for a non-linear variant.
    """

    def __init__(
        self, in_dim: int, out_dim: int, num_layers: int = 5, hidden_dim: int | None = None, activation=None
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        hidden_dim = hidden_dim or in_dim
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(
            EqualLinear(d_in, d_out, activation=activation if i < num_layers - 1 else None)
            for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:]))
        )

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            code = layer(code)
        return code
