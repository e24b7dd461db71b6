"""LIA's generator network: encoder, motion MLP, motion basis and flow generator (``G`` in the paper).

This is the part a published checkpoint's ``'gen'`` state dict holds. Its ``forward`` is the training
reconstruction (absolute transfer of a driving frame onto a source frame of the same video); the
pieces are exposed for inference (``encode`` once, ``magnitudes`` per driving frame, ``decode``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..functional.checks import check_shape
from ..functional.precision import full_precision
from ..registry import build
from .motion_mlp import MotionMLP

__all__ = ["LIAGenerator"]


# what LIAGenerator reads from each part (docs/plugins.md); a plugin lacking one fails here, not mid-run
_INTERFACES = {
    "encoder": ("latent_dim", "size", "feature_channels"),
    "generator": ("latent_dim", "size", "feature_channels"),
    "motion basis": ("latent_dim", "num_magnitudes", "directions"),
    "loss set": (
        "generator_losses",
        "discriminator_losses",
        "r1_loss",
        "is_r1_step",
        "adversarial_weight",
        "r1_weight",
    ),
}


def check_interface(role: str, module: object) -> None:
    """Raise a ``ValueError`` naming what ``module`` lacks of the interface of ``role`` (a key of
    ``_INTERFACES``): used by ``LIAGenerator`` for its parts and by ``LIA`` for its loss set."""
    missing = [name for name in _INTERFACES[role] if not hasattr(module, name)]
    if missing:
        raise ValueError(
            f"{role} {type(module).__module__}.{type(module).__qualname__} has no {', '.join(missing)}; "
            f"a{'n' if role == 'encoder' else ''} {role} needs {', '.join(_INTERFACES[role])} "
            f"(docs/plugins.md)"
        )


def _check_motion_basis(basis: nn.Module, latent_dim: int) -> None:
    """A basis whose shapes do not fit would otherwise fail mid-training, far from its cause."""
    name = f"motion basis {type(basis).__module__}.{type(basis).__qualname__}"
    count = basis.num_magnitudes
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"{name}: num_magnitudes must be a positive int, got {count!r}")
    with torch.no_grad():
        directions = basis.directions()
        if directions is not None and tuple(directions.shape) != (latent_dim, count):
            raise ValueError(
                f"{name}: directions() must be None or (latent_dim, num_magnitudes) = ({latent_dim}, {count}), "
                f"got {tuple(directions.shape)}"
            )
        reference = next(basis.parameters(), None)
        magnitudes = torch.zeros(2, count, device=None if reference is None else reference.device)
        path = basis(magnitudes)
    if not isinstance(path, torch.Tensor) or tuple(path.shape) != (2, latent_dim):
        got = tuple(path.shape) if isinstance(path, torch.Tensor) else type(path).__name__
        raise ValueError(f"{name}: forward((B, {count}) magnitudes) must return (B, {latent_dim}), got {got}")


class LIAGenerator(nn.Module):
    """Encoder E, motion MLP, motion basis D_m and flow generator G.

    Args:
        encoder: an encoder module or config (``lmtk.LIAEncoder.v1``, ``lmtk.TimmEncoder.v1``, ...).
        generator: a generator module or config (``lmtk.FlowGenerator.v1``); stored as ``synthesis``.
        motion_basis: a motion basis module or config (``lmtk.GramSchmidtBasis.v1``,
            ``lmtk.DirectPath.v1``, or a plugin).
        motion_mlp_layers: depth of the MLP from a code to magnitudes (5 in the paper).
        motion_mlp_activation: ``None`` (the published, affine MLP) or ``"leaky_relu"``.
    """

    def __init__(
        self,
        encoder: nn.Module | dict,
        generator: nn.Module | dict,
        motion_basis: nn.Module | dict,
        motion_mlp_layers: int = 5,
        motion_mlp_activation: str | None = None,
    ) -> None:
        super().__init__()
        self.encoder = build(encoder, "encoders")
        self.synthesis = build(generator, "generators")
        self.motion_basis = build(motion_basis, "motion_bases")
        for role, module in (
            ("encoder", self.encoder),
            ("generator", self.synthesis),
            ("motion basis", self.motion_basis),
        ):
            check_interface(role, module)
        latent_dim = self.encoder.latent_dim
        if self.synthesis.latent_dim != latent_dim or self.motion_basis.latent_dim != latent_dim:
            raise ValueError(
                f"latent_dim differs: encoder {latent_dim}, generator {self.synthesis.latent_dim}, "
                f"motion basis {self.motion_basis.latent_dim}; set the same latent_dim on all three"
            )
        if dict(self.encoder.feature_channels) != dict(self.synthesis.feature_channels):
            raise ValueError(
                f"encoder features {self.encoder.feature_channels} do not match the generator's "
                f"{self.synthesis.feature_channels}; give both the same size and channel settings"
            )
        _check_motion_basis(self.motion_basis, latent_dim)
        self.motion_mlp = MotionMLP(
            latent_dim, self.motion_basis.num_magnitudes, motion_mlp_layers, activation=motion_mlp_activation
        )
        self.size = self.synthesis.size
        self.latent_dim = latent_dim

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Code ``z_{s->r}`` ``(B, D)`` and appearance features (coarse to fine) of ``image``."""
        return self.encoder(image)

    def encode_code(self, image: torch.Tensor) -> torch.Tensor:
        """Only the code; no feature pyramid is kept (what a driving frame needs)."""
        return self.encoder(image, with_features=False)[0]

    def _check_codes(self, name: str, codes: torch.Tensor) -> None:
        check_shape(codes, ["B", self.latent_dim], name)

    def magnitudes(self, code: torch.Tensor) -> torch.Tensor:
        """Motion magnitudes ``A_{r->x}`` ``(B, M)`` of a code."""
        # A few small matrix products: kept in at least float32 under autocast, where bf16 alone moved a
        # trained model's images by 0.5 % (docs/performance.md)
        self._check_codes("code", code)
        with full_precision(code) as precision:
            return self.motion_mlp(code.to(precision))

    def path(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """Latent path ``w_{r->x} = sum_i a_i d_i`` ``(B, D)``."""
        with full_precision(magnitudes) as precision:
            return self.motion_basis(magnitudes.to(precision))

    def directions(self) -> torch.Tensor | None:
        """The basis ``(D, M)``, or None for a basis-free ablation."""
        return self.motion_basis.directions()

    def decode(
        self, latent: torch.Tensor, features: Sequence[torch.Tensor], return_levels: bool = False
    ) -> torch.Tensor:
        """Image from a target latent code and the source's features."""
        self._check_codes("latent", latent)
        if latent.shape[0] != features[0].shape[0]:
            raise ValueError(
                f"latent batch {latent.shape[0]} does not match the features' batch {features[0].shape[0]} "
                f"(expand the source's features over the batch: [f.expand(B, -1, -1, -1) for f in features])"
            )
        return self.synthesis(latent.to(features[0].dtype), features, return_levels=return_levels)

    def forward(
        self, source: torch.Tensor, driving: torch.Tensor, return_magnitudes: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Reconstruct ``driving`` from ``source`` (eq. 4 and 11): ``G(z_s + w(A(E(driving))), feats)``.

        ``return_magnitudes`` also returns the driving frames' magnitudes ``A`` (for a penalty on them).
        """
        code, features = self.encode(source)
        magnitudes = self.magnitudes(self.encode_code(driving))
        image = self.decode(code + self.path(magnitudes), features)
        return (image, magnitudes) if return_magnitudes else image
