"""Every lmtk registry, in one place, and :func:`build` that turns config dicts into objects.

Names are versioned (``lmtk.GramSchmidtBasis.v1``): a component whose signature changes registers
``.v2`` and keeps ``.v1`` so old configs still build. Plugins register through the entry-point group
``lmtk_<kind>`` (for example ``lmtk_motion_bases``) in their own packaging metadata and are found
without being imported.

Example:
    >>> from lmtk.registry import build
    >>> basis = build(dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=16, num_directions=4))
    >>> tuple(basis.directions().shape)
    (16, 4)
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import numbers
import typing
import warnings
from collections.abc import Mapping
from typing import Any

import catalogue

__all__ = [
    "KINDS",
    "RegistryError",
    "build",
    "check_registered_types",
    "RENAMED_KINDS",
    "discriminators",
    "encoders",
    "generators",
    "get",
    "kind_of",
    "list_components",
    "loss_sets",
    "datasets",
    "metrics",
    "models",
    "motion_bases",
    "synthesis_networks",
    "warpers",
    "keypoint_extractors",
    "identity_extractors",
]

encoders = catalogue.create("lmtk", "encoders", entry_points=True)
motion_bases = catalogue.create("lmtk", "motion_bases", entry_points=True)
synthesis_networks = catalogue.create("lmtk", "synthesis_networks", entry_points=True)
warpers = catalogue.create("lmtk", "warpers", entry_points=True)
discriminators = catalogue.create("lmtk", "discriminators", entry_points=True)
loss_sets = catalogue.create("lmtk", "loss_sets", entry_points=True)
datasets = catalogue.create("lmtk", "datasets", entry_points=True)
metrics = catalogue.create("lmtk", "metrics", entry_points=True)
models = catalogue.create("lmtk", "models", entry_points=True)
keypoint_extractors = catalogue.create("lmtk", "keypoint_extractors", entry_points=True)
identity_extractors = catalogue.create("lmtk", "identity_extractors", entry_points=True)

KINDS: dict[str, catalogue.Registry] = {
    "encoders": encoders,
    "motion_bases": motion_bases,
    "synthesis_networks": synthesis_networks,
    "warpers": warpers,
    "discriminators": discriminators,
    "loss_sets": loss_sets,
    "datasets": datasets,
    "metrics": metrics,
    "models": models,
    "keypoint_extractors": keypoint_extractors,
    "identity_extractors": identity_extractors,
}

#: Kinds under their former names: the old name still finds the kind (``get(name, "generators")``,
#: ``lmtk list generators``), and plugins declared in the old entry-point group (``lmtk_generators``) are
#: still found. "generator" now names only the whole G (``model.generator``); docs/plugins.md.
RENAMED_KINDS = {"generators": "synthesis_networks"}
generators = synthesis_networks  # the module attribute under the former name, for plugins that import it

# Importing these modules runs the ``@registry.register`` decorators of the built-in components.
_BUILTIN_MODULES = ("lmtk.models", "lmtk.losses", "lmtk.datasets", "lmtk.evaluation")
_builtins_loaded = False


class RegistryError(KeyError):
    """An unknown component name or kind; the message lists what is available."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def list_components(kind: str | None = None) -> dict[str, list[str]]:
    """Registered names by kind (built-in and plugin entry points), sorted."""
    _load_builtins()
    kind = RENAMED_KINDS.get(kind, kind)
    if kind is not None and kind not in KINDS:
        raise RegistryError(f"Unknown registry kind '{kind}'. Available kinds: {', '.join(KINDS)}")
    kinds = [kind] if kind else list(KINDS)
    return {k: sorted(_names(KINDS[k])) for k in kinds}


def _names(registry: catalogue.Registry) -> set[str]:
    """Built-in and plugin names, without importing any plugin: one that fails to import must not hide
    the others (catalogue's ``get_all`` imports every entry point of the kind)."""
    plugins = {entry_point.name for entry_point in _entry_points(registry)}
    return plugins | {
        keys[-1] for keys in catalogue.REGISTRY if tuple(keys[:-1]) == tuple(registry.namespace)
    }


def _entry_points(registry: catalogue.Registry):
    """The installed entry points of ``registry``'s group and of its former group (not imported): those
    catalogue read when it was imported."""
    former = [f"lmtk_{old}" for old, new in RENAMED_KINDS.items() if registry.namespace == ("lmtk", new)]
    groups = (registry.entry_point_namespace, *former)
    return [ep for group in groups for ep in catalogue.AVAILABLE_ENTRY_POINTS.select(group=group)]


def _load(registry: catalogue.Registry, name: str) -> Any:
    """The object registered under ``name``; a plugin that fails to import is one error naming it.

    A name registered in this process (lmtk's own components, or a user's ``@register``) wins over an
    installed plugin's entry point of the same name, which would otherwise silently change what every
    config using that name builds; the plugin is then ignored with a warning.
    """
    registered = catalogue.REGISTRY.get((*registry.namespace, name))
    if registered is not None:
        for entry_point in _entry_points(registry):
            if entry_point.name == name:
                _warn_shadowing(registry, entry_point)
        return registered
    for entry_point in _entry_points(registry):
        if entry_point.name == name:
            try:
                return entry_point.load()
            except Exception as error:
                dist = getattr(entry_point.dist, "name", None)
                package = f" (package {dist})" if dist else ""
                raise RegistryError(
                    f"Cannot load plugin component '{name}'{package}: entry point {entry_point.value} "
                    f"in group {registry.entry_point_namespace} failed with {type(error).__name__}: "
                    f"{error}. Fix or reinstall the plugin, or uninstall it."
                ) from error
    return registry.get(name)


_warned_shadowing: set[tuple[str, str]] = set()


def _warn_shadowing(registry: catalogue.Registry, entry_point) -> None:
    key = (registry.entry_point_namespace, entry_point.name)
    if key in _warned_shadowing:
        return
    _warned_shadowing.add(key)
    dist = getattr(entry_point.dist, "name", None)
    package = f"package {dist}" if dist else f"entry point {entry_point.value}"
    warnings.warn(
        f"{package} registers '{entry_point.name}' in {registry.entry_point_namespace}, a name lmtk "
        f"already has; lmtk's component is used. Give the plugin's component a name in its own "
        f"namespace (mypackage.Name.v1).",
        stacklevel=4,
    )


def kind_of(name: str) -> str | None:
    """The kind a registered name belongs to, or None."""
    for kind, names in list_components().items():
        if name in names:
            return kind
    return None


def get(name: str, kind: str | None = None) -> Any:
    """The factory registered under ``name``; searches every kind when ``kind`` is None."""
    _load_builtins()
    kind = RENAMED_KINDS.get(kind, kind)
    if kind is not None:
        if kind not in KINDS:
            raise RegistryError(f"Unknown registry kind '{kind}'. Available kinds: {', '.join(KINDS)}")
        registry = KINDS[kind]
        if name in _names(registry):
            return _load(registry, name)
        available = ", ".join(sorted(_names(registry))) or "none"
        other = kind_of(name)
        # a plugin declared in the wrong entry-point group shows up in `lmtk list` under another kind
        hint = (
            f" ('{name}' is one of the {other}, entry-point group lmtk_{other}; a {kind} component "
            f"belongs in lmtk_{kind})"
            if other
            else _plugin_hint(name)
        )
        raise RegistryError(f"Unknown {kind} name '{name}'.{hint} Available {kind}: {available}")
    found = kind_of(name)
    if found is None:
        components = list_components()
        kinds = {n: k for k, v in components.items() for n in v}
        close = difflib.get_close_matches(name, list(kinds), n=1, cutoff=0.8)
        if close:
            raise RegistryError(
                f"Unknown component name '{name}': did you mean '{close[0]}' (one of the {kinds[close[0]]})?"
            )
        listing = "; ".join(f"{k}: {', '.join(v) or 'none'}" for k, v in components.items())
        raise RegistryError(
            f"Unknown component name '{name}'.{_plugin_hint(name)} Available names by kind: {listing}"
        )
    return _load(KINDS[found], name)


def _plugin_hint(name: str) -> str:
    """For a name outside lmtk's namespace (one a config or checkpoint got from a plugin): install it."""
    if name.startswith("lmtk.") or "." not in name:
        return ""
    return f" It is not lmtk's own: install the plugin that provides it (package '{name.split('.')[0]}'?)."


def _in_mmengine_registry(name: str) -> bool:
    """Whether one of mmengine's registries (or a child of one) holds ``name`` itself."""
    from mmengine.registry import Registry, root

    pending = [value for value in vars(root).values() if isinstance(value, Registry)]
    while pending:
        registry = pending.pop()
        if name in registry.module_dict:
            return True
        pending += list(registry.children.values())
    return False


def check_registered_types(cfg: Any, source: str) -> None:
    """Refuse a config read from a file (a checkpoint's) whose ``type`` names no registered component.

    Asked for a name it does not hold, an mmengine registry imports the name as a dotted path and calls
    it (``type="subprocess.call"`` runs a command), so a config that is data may still run code when
    built; a stranger's config may name only lmtk's, its plugins' and mmengine's registered components.
    """
    from .checkpoint import TRUST_HINT

    if isinstance(cfg, Mapping):
        name = cfg.get("type")
        if name is not None and not (
            isinstance(name, str) and (kind_of(name) is not None or _in_mmengine_registry(name))
        ):
            raise ValueError(
                f"the config stored in {source} names type {name!r}, which no registry holds; building it "
                f"would import and call it: give the model's config (--config / config=...), or pass {TRUST_HINT}"
            )
        for value in cfg.values():
            check_registered_types(value, source)
    elif isinstance(cfg, list | tuple):
        for value in cfg:
            check_registered_types(value, source)


def _is_lmtk_config(value: Mapping) -> bool:
    """A nested config lmtk builds: its type is callable, registered, or claims the ``lmtk.`` namespace.

    Other typed dicts (mmcv transforms, mmengine hooks) pass through for their own registries.
    """
    name = value["type"]
    return not isinstance(name, str) or name.startswith("lmtk.") or kind_of(name) is not None


def _build_nested(value: Any) -> Any:
    if isinstance(value, Mapping) and "type" in value and _is_lmtk_config(value):
        return build(value)
    if isinstance(value, Mapping):
        return {k: _build_nested(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_build_nested(v) for v in value)
    return value


_NUMBER_TYPES = {int: "an int", float: "a number", bool: "True or False"}


def _check_number_types(name: str, factory: Any, kwargs: Mapping[str, Any]) -> None:
    """A config value of the wrong type for a number the factory declares (``num_directions="10"``)
    failed deep inside torch; it is one error naming the key."""
    try:
        hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    except Exception:  # noqa: BLE001 - unresolvable annotations: nothing to check against
        return
    for key, value in kwargs.items():
        wanted = hints.get(key)
        if wanted not in _NUMBER_TYPES:
            continue
        if wanted is bool:
            fits = isinstance(value, bool)
        else:  # numpy numbers count; an int given as 10.0 fails in torch as surely as "10"
            number = numbers.Real if wanted is float else numbers.Integral
            fits = isinstance(value, number) and not isinstance(value, bool)
        if not fits:
            raise TypeError(
                f"Cannot build '{name}': {key} must be {_NUMBER_TYPES[wanted]}, got {value!r} "
                f"({type(value).__name__})"
            )


def _check_renamed_keys(name: str, factory: Any, kwargs: Mapping[str, Any]) -> None:
    """A key another version of the factory takes (``renamed_keys``: {that key: this version's}) is one
    error naming the key to use, rather than an unexpected keyword from inside the factory."""
    renamed = getattr(factory, "renamed_keys", {})
    for key in kwargs:
        if key in renamed:
            raise TypeError(
                f"Cannot build '{name}': it takes {renamed[key]!r} where another version of it takes {key!r}; "
                f"rename the key, or name the version written for it (docs/plugins.md, 'Renamed keys')"
            )


def build(cfg: Mapping[str, Any] | Any, kind: str | None = None, **overrides: Any) -> Any:
    """Build a component from a config dict ``{"type": NAME, **kwargs}``.

    Nested dicts that carry a ``type`` are built first (bottom-up), so a component receives finished
    sub-modules; a factory with ``builds_own_children = True`` receives them as configs instead. Anything that is not a mapping (an already built module, None) is returned unchanged.
    """
    if not isinstance(cfg, Mapping):
        return cfg
    cfg = dict(cfg)
    if "type" not in cfg:
        raise RegistryError(
            f"Config {cfg!r} has no 'type' key; name a registered component, "
            f"for example type='lmtk.LIA.v1' (run `python -m lmtk list` to see them)."
        )
    name = cfg.pop("type")
    if not isinstance(name, str):
        return name(**{k: _build_nested(v) for k, v in {**cfg, **overrides}.items()})
    factory = get(name, kind)
    kwargs = {**cfg, **overrides}
    _check_renamed_keys(name, factory, kwargs)
    # a factory that fills shared settings into its children's configs builds them itself
    if not getattr(factory, "builds_own_children", False):
        kwargs = {k: _build_nested(v) for k, v in kwargs.items()}
    _check_number_types(name, factory, kwargs)
    try:
        return factory(**kwargs)
    except TypeError as error:
        if "unexpected keyword" in str(error) and "Cannot build" not in str(error):
            # an inherited dict keeps its keys when only its type changes
            raise TypeError(
                f"Cannot build '{name}': {error} (if that key comes from a _base_ config written for "
                f"another type, add _delete_=True to the dict to replace it whole)"
            ) from error
        if "unexpected keyword" in str(error) or "missing" in str(error):
            raise TypeError(f"Cannot build '{name}': {error}") from error
        raise
