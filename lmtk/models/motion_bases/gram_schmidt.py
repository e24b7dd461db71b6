"""Linear Motion Decomposition: a learned orthonormal basis of motion directions (LIA, eq. 4)."""

from __future__ import annotations

import torch
from torch import nn

from ...functional.checks import check_shape
from ...registry import motion_bases

__all__ = ["GramSchmidtBasis"]


@motion_bases.register("lmtk.GramSchmidtBasis.v1")
class GramSchmidtBasis(nn.Module):
    """``M`` directions in latent space, orthonormalised from a free matrix.

    A free ``(latent_dim, M)`` matrix is orthonormalised by a QR decomposition (Gram-Schmidt), so the
    directions stay orthonormal while the matrix is trained. The latent path is ``w = sum_i a_i d_i``.

    Args:
        latent_dim: size of the latent code (512 in the paper).
        num_directions: ``M`` (20 by default; 5, 10, 40, 100 in the paper's Table 5).
    """

    def __init__(self, latent_dim: int = 512, num_directions: int = 20) -> None:
        super().__init__()
        if not 1 <= num_directions <= latent_dim:
            raise ValueError(f"num_directions must be in [1, latent_dim={latent_dim}], got {num_directions}")
        self.weight = nn.Parameter(torch.randn(latent_dim, num_directions))
        self.latent_dim = latent_dim
        self.num_magnitudes = num_directions

    def directions(self) -> torch.Tensor:
        """``(latent_dim, M)`` with orthonormal columns ``d_1 ... d_M``.

        Without gradients (inference, evaluation) the result is kept until the weight changes (its
        storage or its version counter: an optimizer step, ``load_state_dict``, ``.to()``; an in-place
        change through ``.data`` bypasses the counter, as it does autograd's checks): a QR per batch is
        wasted work, and on a GPU it waits for the device.
        """
        return self._directions().clone()  # a copy: an edit of the result must not change the model

    def _directions(self) -> torch.Tensor:
        """:meth:`directions` without the copy, for this module's own use (once per batch)."""
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return self._orthonormalise()
        key = (self.weight.data_ptr(), self.weight._version, self.weight.dtype, self.weight.device)
        cached = self.__dict__.get("_cached_directions")
        if cached is None or cached[0] != key:
            cached = (key, self._orthonormalise())
            self.__dict__["_cached_directions"] = cached
        return cached[1]

    def _orthonormalise(self) -> torch.Tensor:
        # QR is not implemented for half types; the +1e-8 matches the published checkpoints' numerics
        q, _ = torch.linalg.qr(self.weight.to(torch.promote_types(self.weight.dtype, torch.float32)) + 1e-8)
        return q

    def forward(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """Latent path ``(B, latent_dim)`` from magnitudes ``(B, M)``."""
        check_shape(magnitudes, ["B", self.num_magnitudes], "magnitudes")
        directions = self._directions()  # float32, or float64 for a model in double precision
        return magnitudes.to(directions.dtype) @ directions.t()
