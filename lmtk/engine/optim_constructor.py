"""One optimizer per network, with StyleGAN2's lazy-regularisation scaling of lr and betas."""

from __future__ import annotations

import copy
import difflib
import inspect
import numbers
from collections.abc import Sequence

import torch
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS
from torch import nn

__all__ = ["LIAOptimWrapperConstructor", "NetworkOptimWrappers"]


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LIAOptimWrapperConstructor:
    """Build an :class:`~mmengine.optim.OptimWrapperDict` with one wrapper per named top-level module.

    Each entry is an ordinary mmengine optim-wrapper config plus an optional ``reg_interval``: with
    regularisation every ``k`` steps, StyleGAN2 multiplies the learning rate by ``k / (k + 1)`` and
    raises each beta to that power, and the published LIA trains with ``k = 4`` for G and ``16`` for D.
    A ``paramwise_cfg`` beside the entries applies to every network; one inside an entry replaces it
    for that network. mmengine's ``accumulative_counts`` (gradient accumulation) must be the same in
    every entry: the networks step together, once per accumulated batch.

    Example config::

        optim_wrapper = dict(
            constructor="LIAOptimWrapperConstructor",
            generator=dict(optimizer=dict(type="Adam", lr=0.002, betas=(0.0, 0.99)), reg_interval=4),
            discriminator=dict(optimizer=dict(type="Adam", lr=0.002, betas=(0.0, 0.99)), reg_interval=16),
        )
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        if not isinstance(optim_wrapper_cfg, dict) or not optim_wrapper_cfg:
            raise TypeError("optim_wrapper must be a dict with one optim-wrapper config per module name")
        self.optim_wrapper_cfg = copy.deepcopy(optim_wrapper_cfg)
        self.paramwise_cfg = paramwise_cfg

    @staticmethod
    def scaled(cfg: dict) -> dict:
        cfg = copy.deepcopy(cfg)
        interval = cfg.pop("reg_interval", None)
        cfg.setdefault("type", "OptimWrapper")
        if interval:
            ratio = interval / (interval + 1)
            optimizer = cfg["optimizer"]
            optimizer["lr"] = optimizer["lr"] * ratio
            if "betas" in optimizer:
                optimizer["betas"] = tuple(beta**ratio for beta in optimizer["betas"])
        return cfg

    def __call__(self, module: nn.Module) -> OptimWrapperDict:
        module = getattr(module, "module", module)
        _check_same_accumulation(self.optim_wrapper_cfg)
        wrappers = {}
        for name, cfg in self.optim_wrapper_cfg.items():
            if not hasattr(module, name) or getattr(module, name) is None:
                raise ValueError(
                    f"optim_wrapper names '{name}', but the model has no such module "
                    f"(it has: {', '.join(n for n, _ in module.named_children())})"
                )
            check_optim_wrapper_cfg(name, cfg)
            cfg = copy.deepcopy(cfg)  # the constructor may be called again
            paramwise = cfg.pop("paramwise_cfg", self.paramwise_cfg) if isinstance(cfg, dict) else None
            constructor = DefaultOptimWrapperConstructor(self.scaled(cfg), copy.deepcopy(paramwise))
            wrappers[name] = constructor(getattr(module, name))
        return NetworkOptimWrappers(**wrappers)


class NetworkOptimWrappers(OptimWrapperDict):
    """mmengine's ``OptimWrapperDict`` of one wrapper per network, whose ``initialize_count_status``
    reaches every wrapper (mmengine's leaves it to the model). The runner calls it before training: with
    ``accumulative_counts`` the count then starts at a resumed run's iteration, and the iterations at the
    end of the run that do not fill an accumulated batch still step, with their own mean.
    """

    def initialize_count_status(self, model: nn.Module, cur_iter: int, max_iters: int) -> None:
        model = getattr(model, "module", model)
        for name, wrapper in self.optim_wrappers.items():
            wrapper.initialize_count_status(getattr(model, name), cur_iter, max_iters)


def _check_same_accumulation(optim_wrapper_cfg: dict) -> None:
    counts = {
        name: cfg.get("accumulative_counts", 1) if isinstance(cfg, dict) else 1
        for name, cfg in optim_wrapper_cfg.items()
    }
    if len(set(counts.values())) > 1:
        given = " but ".join(f"optim_wrapper.{name}.accumulative_counts={k}" for name, k in counts.items())
        raise ValueError(
            f"{given}: the networks step together, once per accumulated batch; give every network the "
            "same accumulative_counts"
        )


def _registered(registry, name: str, what: str, where: str):
    found = registry.get(name)
    if found is None:
        near = difflib.get_close_matches(name, list(registry.module_dict), n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""
        known = ", ".join(sorted(registry.module_dict))
        raise ValueError(f"{where}: unknown {what} {name!r}{hint}; known: {known}")
    return found


def _is_real(value) -> bool:
    return isinstance(value, (numbers.Real, torch.Tensor)) and not isinstance(value, bool)


def check_optim_wrapper_cfg(name: str, cfg) -> None:
    """Check one network's optim-wrapper entry before mmengine builds it: a misspelt optimizer or a
    hyperparameter of the wrong type (``lr="1e-3"``) otherwise fails inside mmengine or torch."""
    where = f"optim_wrapper.{name}"
    if not isinstance(cfg, dict) or not isinstance(cfg.get("optimizer"), dict):
        raise ValueError(
            f"{where} must be a dict with an 'optimizer' dict, e.g. dict(optimizer=dict(type='Adam', lr=0.002))"
        )
    if isinstance(cfg.get("type"), str):
        _registered(OPTIM_WRAPPERS, cfg["type"], "optim wrapper type", f"{where}.type")
    interval = cfg.get("reg_interval")
    if interval is not None and (
        not isinstance(interval, numbers.Integral) or isinstance(interval, bool) or interval < 1
    ):
        raise ValueError(
            f"{where}.reg_interval must be a positive int (regularisation every k steps) or None (no scaling), got {interval!r}"
        )
    optimizer = cfg["optimizer"]
    if interval is not None and "lr" not in optimizer:
        raise ValueError(f"{where}: reg_interval scales the learning rate, so set optimizer.lr as well")
    kind = optimizer.get("type")
    if kind is None:
        raise ValueError(f"{where}.optimizer has no 'type'; name one, e.g. type='Adam'")
    factory = (
        _registered(OPTIMIZERS, kind, "optimizer type", f"{where}.optimizer.type")
        if isinstance(kind, str)
        else kind
    )
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or an odd callable: nothing to check against
        return
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for key, value in optimizer.items():
        if key == "type":
            continue
        parameter = parameters.get(key)
        if parameter is None:
            if takes_any:
                continue
            accepted = ", ".join(k for k in parameters if k not in ("self", "params"))
            raise ValueError(f"{where}.optimizer: {kind} takes no option {key!r}; it takes: {accepted}")
        _check_hyperparameter(f"{where}.optimizer.{key}", parameter.default, value)


def _check_hyperparameter(where: str, default, value) -> None:
    """Compare ``value`` with the type of the optimizer's own default for that option."""
    if isinstance(default, bool):
        fits, wanted = isinstance(value, bool), "True or False"
    elif _is_real(default):
        fits, wanted = _is_real(value), "a number"
    elif isinstance(default, tuple) and default and all(_is_real(d) for d in default):
        fits = (
            isinstance(value, Sequence)
            and not isinstance(value, str)
            and len(value) == len(default)
            and all(_is_real(v) for v in value)
        )
        wanted = f"{len(default)} numbers, like {default}"
    else:
        return
    if not fits:
        raise ValueError(f"{where} must be {wanted}, got {value!r} ({type(value).__name__})")
