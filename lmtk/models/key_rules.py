"""How a published checkpoint's tensor names map onto lmtk's module names, both ways.

A rule is ``(published template, lmtk template, (to lmtk, to published))``. ``{b}`` in a template stands
for a number; an index may be an expression of it (``{b+1}``, ``{2*s+1}``) so each rule reads, and
inverts, both ways. The converters reshape a tensor whose published shape differs (``SAME`` keeps it).
Each model's own rules live beside it (:mod:`lmtk.models.lia_keys`, :mod:`lmtk.models.liax_keys`);
reading and writing files is :mod:`lmtk.checkpoint`'s.

Example:
    >>> rules = [("dec.convs.{2*s+1}.bias", "synthesis.stages.{s}.conv.bias", SAME)]
    >>> mapped, unknown = map_keys({"dec.convs.5.bias": 0, "dec.other": 1}, rules, to_lmtk=True)
    >>> mapped, unknown
    ({'synthesis.stages.2.conv.bias': 0}, ['dec.other'])
    >>> map_keys(mapped, rules, to_lmtk=False)[0]
    {'dec.convs.5.bias': 0}
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ..checkpoint import CheckpointError
from ..functional.fir import fir_kernel

__all__ = [
    "BIAS4D",
    "BUFFER_KEYS",
    "MOD_WEIGHT",
    "SAME",
    "Rule",
    "check_mapped",
    "fir_buffers",
    "map_keys",
]

Rule = tuple[str, str, tuple]


def _bias4d(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1)


def _bias4d_back(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(1, -1, 1, 1)


def _mod_weight(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[1:])


def _mod_weight_back(t: torch.Tensor) -> torch.Tensor:
    return t.unsqueeze(0)


#: how a published tensor is reshaped, (to lmtk, to published): kept, a (1, C, 1, 1) bias, a modulated
#: conv's (1, O, I, k, k) weight
SAME = (None, None)
BIAS4D = (_bias4d, _bias4d_back)
MOD_WEIGHT = (_mod_weight, _mod_weight_back)

#: the constant FIR kernels the published formats store: ignored on load, rebuilt on export
BUFFER_KEYS = re.compile(r".*\.kernel$")

_EXPR = re.compile(r"\{(?:(\d+)\*)?([a-z])(?:\+(\d+))?\}")


def _template_regex(template: str) -> re.Pattern:
    parts, last = [], 0
    for m in _EXPR.finditer(template):
        parts += [re.escape(template[last : m.start()]), r"(\d+)"]
        last = m.end()
    return re.compile("".join(parts) + re.escape(template[last:]))


def _translate(key: str, source: str, target: str) -> str | None:
    """Rewrite ``key`` matching template ``source`` into template ``target``, solving the indices."""
    match = _template_regex(source).fullmatch(key)
    if match is None:
        return None
    values = {}
    for m, number in zip(_EXPR.finditer(source), match.groups()):
        mul, name, add = int(m.group(1) or 1), m.group(2), int(m.group(3) or 0)
        value, remainder = divmod(int(number) - add, mul)
        if remainder or value < 0 or values.setdefault(name, value) != value:
            return None
    return _EXPR.sub(lambda m: str(int(m.group(1) or 1) * values[m.group(2)] + int(m.group(3) or 0)), target)


def map_keys(state: Mapping[str, torch.Tensor], rules: list[Rule], to_lmtk: bool) -> tuple[dict, list[str]]:
    """``state`` renamed (and reshaped) by the first rule that matches each key, and the keys none
    matched."""
    mapped, unknown = {}, []
    for key, value in state.items():
        for published, lmtk_name, (forward, backward) in rules:
            source, target, convert = (
                (published, lmtk_name, forward) if to_lmtk else (lmtk_name, published, backward)
            )
            name = _translate(key, source, target)
            if name is not None:
                mapped[name] = convert(value) if convert else value
                break
        else:
            unknown.append(key)
    return mapped, unknown


def check_mapped(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], what: str) -> None:
    """A mapped checkpoint ``state`` must have exactly ``expected``'s keys, each with its shape.

    Raises:
        CheckpointError: naming the first missing, unknown or mis-shaped key (``what``: the checkpoint,
            e.g. ``"published checkpoint"``).
    """
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(f"{what} lacks {len(missing)} tensor(s) the model needs, e.g. {missing[0]}")
    for key, value in state.items():
        if key not in expected:
            raise CheckpointError(f"{what} has {key}, which this model does not have")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"shape mismatch for {key}: checkpoint {tuple(value.shape)}, model {tuple(expected[key].shape)}"
            )


def fir_buffers() -> tuple[torch.Tensor, torch.Tensor]:
    """The published down- and upsampling FIR kernels ``[1, 3, 3, 1]``, bit for bit (the latter gain 4)."""
    return fir_kernel((1, 3, 3, 1)), fir_kernel((1, 3, 3, 1), gain=4.0)
