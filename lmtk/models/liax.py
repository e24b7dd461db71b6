"""LIA-X (Wang et al. 2025): LIA's successor at 512 px, built from lmtk's components.

The model is :class:`~lmtk.models.lia.LIA` with other parts (``configs/liax/liax_512.py``): the encoder
whose blocks widen in their first conv (``LIAEncoder(widen_first=True)``), one linear layer from the
code to 40 magnitudes, LIA's QR basis, and :class:`~lmtk.models.generators.liax_generator.LIAXGenerator`
warping with ``align_corners=True``. What is LIA-X's own is here: its defaults and the names of the 14
directions its authors labelled. The published checkpoint's key rules are in
:mod:`lmtk.models.liax_keys`.
"""

from __future__ import annotations

import torch

from ..registry import models
from .direction_names import check_direction_names
from .lia import LIA, v1_factory

__all__ = ["LIAX", "LIAX_DIRECTION_NAMES"]

#: The published control list (``config/animation/*.yaml`` of the LIA-X code): name -> direction index.
LIAX_DIRECTION_NAMES = {
    "yaw1": 37,
    "yaw2": 39,
    "pitch": 28,
    "roll1": 15,
    "roll2": 33,
    "neck": 31,
    "pout": 6,
    "mouth_close": 25,  # open -> close mouth
    "mouth_o": 16,  # an 'O' mouth
    "cheek": 19,  # moving apple cheek
    "eyes": 13,  # close -> open eyes
    "eyebrows": 24,  # raise / frown eyebrows
    "eyeballs1": 17,
    "eyeballs2": 26,
}


@models.register("lmtk.LIAX.v2")
class LIAX(LIA):
    """LIA-X: :class:`LIA` with a one-layer motion head and LIA-X's direction names by default.

    ``lmtk.LIAX.v2`` builds it; ``lmtk.LIAX.v1`` takes the synthesis network under its former key,
    ``generator`` (see :func:`~lmtk.models.lia.v1_factory`).

    Args:
        sparsity_weight: weight of the L1 penalty on the driving frames' motion magnitudes during
            training (LIA-X's sparse motion dictionary); 0 turns it off.
        direction_names: as for :class:`LIA`; None gives :data:`LIAX_DIRECTION_NAMES` when the basis
            has their 40 directions, no names otherwise.
        **kwargs: as for :class:`LIA`.
    """

    def __init__(
        self, *args, motion_mlp_layers: int = 1, sparsity_weight: float = 0.0, direction_names=None, **kwargs
    ) -> None:
        super().__init__(*args, motion_mlp_layers=motion_mlp_layers, **kwargs)
        if direction_names is None and self.net.motion_basis.num_magnitudes == 40:
            direction_names = LIAX_DIRECTION_NAMES
        self.direction_names = check_direction_names(direction_names, self.net.motion_basis.num_magnitudes)
        if sparsity_weight < 0:
            raise ValueError(f"sparsity_weight must be >= 0, got {sparsity_weight}")
        self.sparsity_weight = float(sparsity_weight)

    def _reconstruct(self, source: torch.Tensor, driving: torch.Tensor) -> tuple[torch.Tensor, dict]:
        if not self.sparsity_weight:
            return super()._reconstruct(source, driving)
        fake, magnitudes = self.generator(source, driving, return_magnitudes=True)
        return fake, {"loss_sparsity": self.sparsity_weight * magnitudes.abs().mean()}


models.register("lmtk.LIAX.v1", func=v1_factory(LIAX))
