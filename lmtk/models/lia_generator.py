"""LIA's generator network: encoder, motion MLP, motion basis and synthesis network (``G`` in the paper).

This is the part a published checkpoint's ``'gen'`` state dict holds. Its ``forward`` is the training
reconstruction (absolute transfer of a driving frame onto a source frame of the same video); for
inference a source is encoded once (:meth:`LIAGenerator.encode_source`) and animated by the paths of
driving frames (:meth:`LIAGenerator.animate`). The transfer equations (eq. 11 and 12) are written once,
in :func:`transfer_latent`, which the onnxruntime backend of the Animator shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from ..functional.checks import check_shape
from ..functional.precision import full_precision
from ..registry import build
from .interfaces import Encoder, MotionBasis, SynthesisNetwork, check_interface
from .motion_mlp import MotionMLP

__all__ = ["LIAGenerator", "SourceEncoding", "transfer_latent"]


def transfer_latent(
    code: torch.Tensor,
    driving_path: torch.Tensor,
    start_path: torch.Tensor | None = None,
    source_path: torch.Tensor | None = None,
    edit_path: torch.Tensor | None = None,
) -> torch.Tensor:
    """The target code of a motion transfer (LIA, eq. 11 and 12).

    Absolute (eq. 11, no ``start_path``): ``z_{s->d} = z_{s->r} + w_{r->d}``, plus ``edit_path`` when
    given. Relative (eq. 12): ``z_{s->d} = z_{s->r} + (w_{r->d} - w_{r->1}) + w_{r->s}``: the source keeps
    its own pose and moves by the motion from the start frame to the driving frame.

    Args:
        code: the source's code ``z_{s->r}`` ``(B, D)`` or ``(1, D)``.
        driving_path: the driving frames' paths ``w_{r->d}`` ``(B, D)``.
        start_path: the path ``w_{r->1}`` of the start frame, whose pose matches the source's ``(1, D)``
            or ``(B, D)``; None for absolute transfer.
        source_path: the source's own path ``w_{r->s}`` (relative transfer); with an edit, the path of
            the edited magnitudes ``D(A_{r->s} + e)``.
        edit_path: an edit's path ``D(e)``, added in absolute transfer (LIA-X's edit-then-animate; in
            relative transfer the edit is in ``source_path``).

    Returns:
        ``(B, D)``, batch dimensions broadcast.
    """
    if start_path is None:
        latent = code + driving_path
        return latent if edit_path is None else latent + edit_path
    if source_path is None:
        raise ValueError("relative transfer (a start_path) needs the source's own path w_{r->s}: source_path")
    return code + (driving_path - start_path) + source_path


class SourceEncoding(NamedTuple):
    """A source image encoded once: what its animation needs (the Animator's
    :class:`~lmtk.apis.animator.EncodedSource` adds the image)."""

    code: torch.Tensor  #: ``z_{s->r}`` ``(B, D)``
    features: list[torch.Tensor]  #: the appearance pyramid, coarse to fine, each ``(B, C, r, r)``
    magnitudes: torch.Tensor  #: ``A_{r->s}`` ``(B, M)``
    path: torch.Tensor  #: ``w_{r->s}`` ``(B, D)``; with an edit ``D(A_{r->s} + e)``
    edit_path: torch.Tensor | None = None  #: ``D(e)`` ``(1, D)``; None without an edit


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
    """Encoder E, motion MLP, motion basis D_m and synthesis network: the whole generator G.

    Each part is checked against its contract (:mod:`lmtk.models.interfaces`) when built.

    Args:
        encoder: an encoder module or config (``lmtk.LIAEncoder.v1``, ``lmtk.TimmEncoder.v1``, ...).
        synthesis: a synthesis network module or config (``lmtk.FlowGenerator.v1``,
            ``lmtk.LIAXGenerator.v1``).
        motion_basis: a motion basis module or config (``lmtk.GramSchmidtBasis.v1``,
            ``lmtk.DirectPath.v1``, or a plugin).
        motion_mlp_layers: depth of the MLP from a code to magnitudes (5 in the paper).
        motion_mlp_activation: ``None`` (the published, affine MLP) or ``"leaky_relu"``.
    """

    def __init__(
        self,
        encoder: Encoder | dict,
        synthesis: SynthesisNetwork | dict,
        motion_basis: MotionBasis | dict,
        motion_mlp_layers: int = 5,
        motion_mlp_activation: str | None = None,
    ) -> None:
        super().__init__()
        self.encoder = build(encoder, "encoders")
        self.synthesis = build(synthesis, "synthesis_networks")
        self.motion_basis = build(motion_basis, "motion_bases")
        for module, contract in (
            (self.encoder, Encoder),
            (self.synthesis, SynthesisNetwork),
            (self.motion_basis, MotionBasis),
        ):
            check_interface(module, contract)
        latent_dim = self.encoder.latent_dim
        if self.synthesis.latent_dim != latent_dim or self.motion_basis.latent_dim != latent_dim:
            raise ValueError(
                f"latent_dim differs: encoder {latent_dim}, synthesis {self.synthesis.latent_dim}, "
                f"motion basis {self.motion_basis.latent_dim}; set the same latent_dim on all three"
            )
        if dict(self.encoder.feature_channels) != dict(self.synthesis.feature_channels):
            raise ValueError(
                f"encoder features {self.encoder.feature_channels} do not match the synthesis network's "
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

    def encode_source(self, image: torch.Tensor, edit: torch.Tensor | None = None) -> SourceEncoding:
        """Everything the animation of ``image`` needs, computed once.

        ``edit``: magnitude offsets ``(1, M)`` (``LIA.edit_offsets``) that move the source along those
        directions first (LIA-X's edit-then-animate).
        """
        code, features = self.encode(image)
        magnitudes = self.magnitudes(code)
        if edit is None:
            return SourceEncoding(code, list(features), magnitudes, self.path(magnitudes))
        edit = edit.to(magnitudes)
        return SourceEncoding(code, list(features), magnitudes, self.path(magnitudes + edit), self.path(edit))

    def motion(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Magnitudes ``A_{r->d}`` ``(B, M)`` and path ``w_{r->d}`` ``(B, D)`` of driving frames (only
        their codes are encoded)."""
        magnitudes = self.magnitudes(self.encode_code(frames))
        return magnitudes, self.path(magnitudes)

    def animate(
        self, source: SourceEncoding, driving_path: torch.Tensor, start_path: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``source`` moved by the driving paths ``(B, D)``: absolute (eq. 11) without ``start_path``,
        relative to the start frame's path (eq. 12) with it (:func:`transfer_latent`). A source of batch 1
        is broadcast over the driving batch."""
        latent = transfer_latent(source.code, driving_path, start_path, source.path, source.edit_path)
        return self.decode(latent, [f.expand(latent.shape[0], *f.shape[1:]) for f in source.features])

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
        magnitudes, path = self.motion(driving)
        image = self.decode(transfer_latent(code, path), features)
        return (image, magnitudes) if return_magnitudes else image
