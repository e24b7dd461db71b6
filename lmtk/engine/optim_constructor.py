"""One optimizer per network, with StyleGAN2's lazy-regularisation scaling of lr and betas."""

from __future__ import annotations

import copy

from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

__all__ = ["LIAOptimWrapperConstructor"]


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LIAOptimWrapperConstructor:
    """Build an :class:`~mmengine.optim.OptimWrapperDict` with one wrapper per named top-level module.

    Each entry is an ordinary mmengine optim-wrapper config plus an optional ``reg_interval``: with
    regularisation every ``k`` steps, StyleGAN2 multiplies the learning rate by ``k / (k + 1)`` and
    raises each beta to that power, and the published LIA trains with ``k = 4`` for G and ``16`` for D.
    A ``paramwise_cfg`` beside the entries applies to every network; one inside an entry replaces it
    for that network.

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
        wrappers = {}
        for name, cfg in self.optim_wrapper_cfg.items():
            if not hasattr(module, name) or getattr(module, name) is None:
                raise ValueError(
                    f"optim_wrapper names '{name}', but the model has no such module "
                    f"(it has: {', '.join(n for n, _ in module.named_children())})"
                )
            cfg = copy.deepcopy(cfg)  # the constructor may be called again
            paramwise = cfg.pop("paramwise_cfg", self.paramwise_cfg) if isinstance(cfg, dict) else None
            constructor = DefaultOptimWrapperConstructor(self.scaled(cfg), copy.deepcopy(paramwise))
            wrappers[name] = constructor(getattr(module, name))
        return OptimWrapperDict(**wrappers)
