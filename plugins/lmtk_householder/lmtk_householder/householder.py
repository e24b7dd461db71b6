"""A motion basis made orthonormal by construction: the first M columns of M Householder reflections.

``Q = H_1 H_2 ... H_M`` with ``H_i = I - 2 v_i v_i^T / |v_i|^2`` is orthogonal for any non-zero ``v_i``,
so its first ``M`` columns are orthonormal without a QR decomposition, and every ``v_i`` can be trained
freely. Unlike Gram-Schmidt, the basis has no preferred first direction.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["HouseholderBasis", "householder_directions"]


def householder_directions(vectors: torch.Tensor) -> torch.Tensor:
    """Orthonormal directions ``(D, M)`` from reflection vectors ``(M, D)``.

    Args:
        vectors: ``(M, D)`` non-zero reflection vectors, ``M <= D``.

    Returns:
        ``H_1 ... H_M E`` where ``E`` holds the first ``M`` columns of the ``D x D`` identity.

    Example:
        >>> d = householder_directions(torch.randn(3, 8))
        >>> torch.allclose(d.t() @ d, torch.eye(3), atol=1e-5)
        True
    """
    if vectors.dim() != 2 or vectors.shape[0] > vectors.shape[1]:
        raise ValueError(f"vectors must be (M, D) with M <= D, got {tuple(vectors.shape)}")
    count, dim = vectors.shape
    out = torch.eye(dim, count, dtype=vectors.dtype, device=vectors.device)
    # apply H_M first: each reflection is a rank-one update, never a D x D matrix
    for v in vectors.flip(0):
        out = out - (2 / v.dot(v)) * torch.outer(v, v @ out)
    return out


class HouseholderBasis(nn.Module):
    """``M`` orthonormal motion directions in latent space; the path is ``w = sum_i a_i d_i``.

    Same interface as ``lmtk.GramSchmidtBasis.v1``, so a config can swap one for the other.

    Args:
        latent_dim: size of the latent code ``D``.
        num_directions: ``M``, at most ``latent_dim``.
    """

    def __init__(self, latent_dim: int = 512, num_directions: int = 20) -> None:
        super().__init__()
        if not 1 <= num_directions <= latent_dim:
            raise ValueError(f"num_directions must be in [1, latent_dim={latent_dim}], got {num_directions}")
        self.vectors = nn.Parameter(torch.randn(num_directions, latent_dim))
        self.latent_dim = latent_dim
        self.num_magnitudes = num_directions

    def directions(self) -> torch.Tensor:
        """``(latent_dim, M)`` with orthonormal columns, in at least float32."""
        dtype = torch.promote_types(self.vectors.dtype, torch.float32)
        return householder_directions(self.vectors.to(dtype))

    def forward(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """Latent path ``(B, latent_dim)`` from magnitudes ``(B, M)``."""
        if magnitudes.dim() != 2 or magnitudes.shape[1] != self.num_magnitudes:
            raise ValueError(f"magnitudes must be (B, {self.num_magnitudes}), got {tuple(magnitudes.shape)}")
        directions = self.directions()
        return magnitudes.to(directions.dtype) @ directions.t()

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, num_directions={self.num_magnitudes}"
