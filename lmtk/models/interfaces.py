"""The component contracts: what lmtk reads from each part a config names, so what a plugin implements.

Each contract is a :class:`typing.Protocol`; a component satisfies it by having its members (plain
attributes do for the properties), with no need to inherit from it. :func:`check_interface` checks a
built component against its contract when the model is built, so a part lacking a member, or a method
that cannot be called the way lmtk calls it, is one error naming what is wrong instead of a failure deep
inside the first training step. Keyword-only parameters (after ``*``) are passed by keyword; the others
by position.

The data path of :class:`~lmtk.models.lia_generator.LIAGenerator`, the whole generator ``G``::

    source image --Encoder--> code z_{s->r}, feature pyramid
    driving frame --Encoder(with_features=False)--> code --motion MLP--> magnitudes A
    magnitudes --MotionBasis--> latent path w = sum_i a_i d_i
    code + path (eq. 11 / 12, :func:`~lmtk.models.lia_generator.transfer_latent`)
        --SynthesisNetwork (warping the features with its Warper)--> image

Registry kinds and entry-point groups (docs/plugins.md): :data:`CONTRACTS`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from torch import Tensor, nn

__all__ = [
    "CONTRACTS",
    "Discriminator",
    "Encoder",
    "LossSet",
    "MotionBasis",
    "SynthesisNetwork",
    "Warper",
    "check_interface",
    "contract_members",
]


class _CodeAndPyramid(Protocol):
    """What the encoder and the synthesis network must agree on."""

    @property
    def latent_dim(self) -> int:
        """``D``, the size of the code."""

    @property
    def size(self) -> int:
        """``S``, the image resolution: the encoder's input, the synthesis network's output."""

    @property
    def feature_channels(self) -> Mapping[int, int]:
        """``{resolution: channels}`` of the appearance pyramid, 8 px to ``S``, coarse to fine: what the
        encoder makes and the synthesis network takes."""


class Encoder(_CodeAndPyramid, Protocol):
    """Image -> latent code and appearance feature pyramid (``lmtk.LIAEncoder.v1``)."""

    def forward(self, image: Tensor, *, with_features: bool = True) -> tuple[Tensor, list[Tensor] | None]:
        """Images ``(B, 3, S, S)`` in [-1, 1] -> code ``(B, D)`` and the pyramid, each ``(B, C_r, r, r)``
        coarse to fine; the pyramid is None when ``with_features`` is False (a driving frame needs only its
        code)."""


class MotionBasis(Protocol):
    """Motion magnitudes -> a path in latent space (``lmtk.GramSchmidtBasis.v1``)."""

    @property
    def latent_dim(self) -> int:
        """``D``, the size of the latent code."""

    @property
    def num_magnitudes(self) -> int:
        """``M``, how many magnitudes the motion MLP predicts."""

    def directions(self) -> Tensor | None:
        """The directions ``(D, M)`` as orthonormal columns, or None for a basis without directions."""

    def forward(self, magnitudes: Tensor) -> Tensor:
        """Magnitudes ``(B, M)`` -> latent path ``(B, D)``, ``w = sum_i a_i d_i`` for a linear basis."""


class SynthesisNetwork(_CodeAndPyramid, Protocol):
    """Latent code + source features -> image (``lmtk.FlowGenerator.v1``; the config key ``synthesis``)."""

    def forward(
        self, latent: Tensor, features: Sequence[Tensor], *, return_levels: bool = False
    ) -> Tensor | tuple[Tensor, list[dict[str, Tensor]]]:
        """Latent ``(B, D)`` and the source's features (coarse to fine) -> image ``(B, 3, S, S)``; with
        ``return_levels`` also a dict per level (``flow`` ``(B, 2, r, r)``, ``mask`` ``(B, 1, r, r)``, ...)."""


class Warper(Protocol):
    """Features + flow (+ mask) -> warped features (``lmtk.FlowWarper.v1``), inside a synthesis network."""

    def forward(self, features: Tensor, flow: Tensor, mask: Tensor | None = None) -> Tensor:
        """Features ``(B, C, H, W)``, flow ``(B, 2, H, W)`` in normalised coordinates, mask
        ``(B, 1, H, W)`` or None -> ``(B, C, H, W)``."""


class Discriminator(Protocol):
    """Image -> realness logit (``lmtk.StyleGAN2Discriminator.v1``); training only."""

    def forward(self, image: Tensor) -> Tensor:
        """Images ``(B, 3, S, S)`` -> logits ``(B, 1)``."""


class LossSet(Protocol):
    """The training losses of the generator and the discriminator (``lmtk.LIALoss.v1``). Each loss dict's
    keys start with ``loss``; subclassing :class:`lmtk.losses.LIALoss` to add a term is the short way."""

    def generator_losses(self, fake: Tensor, real: Tensor, fake_logits: Tensor | None) -> dict[str, Tensor]:
        """The generator's weighted losses; ``fake_logits`` is None when ``adversarial_weight`` is 0."""

    def discriminator_losses(self, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
        """The discriminator's weighted losses."""

    def r1_loss(self, real_logits: Tensor, real_images: Tensor) -> dict[str, Tensor]:
        """The weighted R1 penalty (``real_images`` require gradients)."""

    def is_r1_step(self, step: int) -> bool:
        """Whether the discriminator step ``step`` adds the R1 penalty."""

    @property
    def adversarial_weight(self) -> float:
        """0 runs and trains no discriminator."""

    @property
    def r1_weight(self) -> float:
        """0 never computes the R1 penalty."""


#: The contract of each registry kind that has one (entry-point group ``lmtk_<kind>``).
CONTRACTS: dict[str, type] = {
    "encoders": Encoder,
    "motion_bases": MotionBasis,
    "synthesis_networks": SynthesisNetwork,
    "warpers": Warper,
    "discriminators": Discriminator,
    "loss_sets": LossSet,
}


def contract_members(contract: type) -> list[str]:
    """The members of ``contract`` in the order they are declared, inherited ones first."""
    members = {}
    for owner in reversed(contract.__mro__):
        for name, value in vars(owner).items():
            if not name.startswith("_") and (isinstance(value, property) or inspect.isfunction(value)):
                members[name] = None
    return list(members)


def _lacks(module: object, member: str) -> bool:
    # every nn.Module has a forward, which raises when a subclass does not define its own
    if member == "forward" and isinstance(module, nn.Module):
        return type(module).forward is nn.Module.forward
    return not hasattr(module, member)


def _role(contract: type) -> str:
    """``MotionBasis`` -> ``motion basis``."""
    return " ".join(word.lower() for word in re.findall(r"[A-Z][a-z]*", contract.__name__))


def _call_problem(module: object, name: str, declared) -> str | None:
    """Why ``module.name`` cannot be called as lmtk calls ``declared``, or None."""
    method = getattr(module, name)
    if not callable(method):
        return f"{name} is not a method"
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):  # a builtin: nothing to check against
        return None
    parameters = list(inspect.signature(declared).parameters.values())[1:]  # without self
    positional = [p.name for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    keywords = {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
    try:
        signature.bind(*positional, **keywords)
    except TypeError as error:
        called = ", ".join([*positional, *(f"{k}=..." for k in keywords)])
        return f"{name}({called}) does not fit its signature {name}{signature} ({error})"
    return None


def check_interface(module: object, contract: type) -> None:
    """Raise one ``ValueError`` naming what ``module`` lacks of ``contract`` (a member, or a method that
    cannot be called the way lmtk calls it)."""
    role = _role(contract)
    name = f"{role} {type(module).__module__}.{type(module).__qualname__}"
    members = contract_members(contract)
    missing = [member for member in members if _lacks(module, member)]
    if missing:
        article = "an" if role[0] in "aeiou" else "a"
        raise ValueError(
            f"{name} has no {', '.join(missing)}; {article} {role} needs {', '.join(members)} "
            f"(lmtk/models/interfaces.py, docs/plugins.md)"
        )
    for member in members:
        declared = inspect.getattr_static(contract, member)
        problem = None if isinstance(declared, property) else _call_problem(module, member, declared)
        if problem:
            raise ValueError(
                f"{name}: {problem}; see {contract.__name__} in lmtk/models/interfaces.py (docs/plugins.md)"
            )
