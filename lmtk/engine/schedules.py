"""Parameter schedules that end with training: ``end="max_iters"``, also when a run is resumed longer."""

from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

__all__ = ["ScheduleLengthHook", "resolve_max_iters"]

_FOLLOWS_MAX_ITERS = ("end", "T_max")  # the entries that may be given as "max_iters"
_LENGTH_KEYS = ("end", "T_max", "total_iters")  # a built scheduler's length


def resolve_max_iters(cfg) -> None:
    """Replace each ``end`` / ``T_max`` given as ``"max_iters"`` in ``cfg.param_scheduler`` by
    ``cfg.train_cfg.max_iters`` (in place), so a cosine decay to zero follows
    ``--cfg-options train_cfg.max_iters=...``. ``tools/train.py`` does it when it builds the config;
    a config built another way calls it before ``LMTKRunner.from_cfg``.
    """
    schedule = cfg.get("param_scheduler")
    if not _mentions_max_iters(schedule):
        return
    max_iters = (cfg.get("train_cfg") or {}).get("max_iters")
    if max_iters is None:
        raise ValueError(
            'param_scheduler gives a length as "max_iters" but train_cfg has no max_iters; set '
            "train_cfg.max_iters or give the scheduler a number"
        )
    cfg.param_scheduler = _resolved(schedule, max_iters)


def _mentions_max_iters(cfg) -> bool:
    if isinstance(cfg, list | tuple):
        return any(_mentions_max_iters(item) for item in cfg)
    if isinstance(cfg, dict):
        return any(cfg.get(key) == "max_iters" for key in _FOLLOWS_MAX_ITERS) or any(
            _mentions_max_iters(value) for value in cfg.values()
        )
    return False


def _resolved(cfg, max_iters: int):
    if isinstance(cfg, list | tuple):
        return [_resolved(item, max_iters) for item in cfg]
    if isinstance(cfg, dict):
        resolved = {key: _resolved(value, max_iters) for key, value in cfg.items()}
        for key in _FOLLOWS_MAX_ITERS:
            if resolved.get(key) == "max_iters":
                resolved[key] = max_iters
        return resolved
    return cfg


@HOOKS.register_module()
class ScheduleLengthHook(Hook):
    """On resume, each parameter scheduler keeps the length its config gives it now (``end``, ``T_max``,
    ``total_iters``); the rest of its state (the step it is at, the current rate) comes from the
    checkpoint. mmengine restores the saved lengths too, so a run resumed with a larger
    ``train_cfg.max_iters`` would stop its ``end="max_iters"`` decay at the old end; with this hook it
    decays from the current rate to the new end. ``LMTKRunner`` registers it.
    """

    priority = "VERY_LOW"

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved, built = checkpoint.get("param_schedulers"), runner.param_schedulers
        if saved is None or built is None:
            return
        pairs = (
            [(saved.get(name, []), schedulers) for name, schedulers in built.items()]
            if isinstance(built, dict) and isinstance(saved, dict)
            else [(saved, built)]
        )
        for states, schedulers in pairs:
            for state, scheduler in zip(states, schedulers, strict=False):
                if isinstance(scheduler, dict):  # not built (a runner that is not training)
                    continue
                state.update({k: scheduler.__dict__[k] for k in _LENGTH_KEYS if k in scheduler.__dict__})
