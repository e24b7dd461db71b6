"""Named motion directions: a model may call some of its directions by name (``yaw1``, ``eyes``...).

One place for how a direction is chosen, by name or by index, so that ``model.edit``, the
``Animator`` and the tools (``--edit yaw1=0.3``, ``--directions yaw1 pitch``) read it the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

__all__ = ["check_direction_names", "direction_index", "edit_offsets", "parse_edit"]


def check_direction_names(names: Mapping[str, int] | Sequence[str] | None, count: int) -> dict[str, int]:
    """``{name: index}`` from a mapping, or from a list naming directions 0, 1, ... in order.

    Names must be identifiers that are not numbers (``"3"`` would be ambiguous with index 3), and each
    index must be one of the ``count`` directions.
    """
    if names is None:
        return {}
    if isinstance(names, str) or not isinstance(names, Mapping | Sequence):
        raise ValueError(f"direction_names must be a dict {{name: index}} or a list of names, got {names!r}")
    pairs = names.items() if isinstance(names, Mapping) else ((n, i) for i, n in enumerate(names))
    result = {}
    for name, index in pairs:
        if not isinstance(name, str) or not name or name.lstrip("+-").isdigit() or "=" in name:
            raise ValueError(f"direction name {name!r} must be a non-numeric string without '='")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise ValueError(f"direction {name!r} has index {index!r}, not one of the {count} directions")
        if name in result:
            raise ValueError(f"direction name {name!r} is given twice")
        result[name] = index
    return result


def direction_index(key: str | int, names: Mapping[str, int], count: int) -> int:
    """The index a direction ``key`` (a name, an index, or an index written as a string) stands for."""
    if isinstance(key, str) and key.lstrip("+-").isdigit():
        key = int(key)
    if isinstance(key, int) and not isinstance(key, bool):
        if not 0 <= key < count:
            raise ValueError(
                f"direction {key} is out of range: the model has {count} directions (0-{count - 1})"
            )
        return key
    if isinstance(key, str) and key in names:
        return names[key]
    known = ", ".join(names) if names else "none; use indices"
    raise ValueError(f"unknown direction {key!r}: the model's direction names are {known}")


def edit_offsets(
    edits: Mapping[str | int, float], names: Mapping[str, int], count: int, like: torch.Tensor | None = None
) -> torch.Tensor:
    """``(1, count)`` magnitude offsets: each edit's value at its direction's index (summed if repeated)."""
    if not isinstance(edits, Mapping):
        raise ValueError(f"an edit is a dict {{direction: value}}, e.g. {{'yaw1': 0.5}}, got {edits!r}")
    offsets = torch.zeros(1, count, dtype=torch.float64)
    for key, value in edits.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"the edit of direction {key!r} must be a number, got {value!r}")
        offsets[0, direction_index(key, names, count)] += float(value)
    if like is not None:
        offsets = offsets.to(device=like.device, dtype=like.dtype)
    return offsets


def parse_edit(items: Iterable[str]) -> dict[str, float]:
    """``["yaw1=0.3", "13=-0.2"]`` (the tools' ``--edit``) as ``{"yaw1": 0.3, "13": -0.2}``."""
    edits: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not key or number is None:
            raise ValueError(
                f"--edit takes DIRECTION=VALUE (a name or an index), e.g. yaw1=0.3, got {item!r}"
            )
        edits[key] = edits.get(key, 0.0) + number
    return edits
