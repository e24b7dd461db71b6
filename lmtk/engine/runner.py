"""mmengine's Runner, building lmtk's models and datasets through the catalogue registries."""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import logging
import os
import os.path as osp
import shutil
from pathlib import Path

import torch
from mmengine.dist import get_world_size, is_main_process
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model

from ..checkpoint import (
    WRAPPER_PREFIXES,
    CheckpointError,
    load_checkpoint_file,
    safe_unpickling,
    unreadable_checkpoint,
)
from ..cli import missing_folders
from ..config_file import read_stored_config
from ..fast_paths import FastPaths, apply_fast_paths, mixed_precision_optim_wrappers
from ..registry import build, kind_of
from .hooks.training_start_hook import TrainingStartHook
from .schedules import ScheduleLengthHook
from .work_dir_lock import work_dir_lock

_RUNNERS_IN_THIS_PROCESS = itertools.count()

__all__ = ["BATCH_SIZE_SCOPES", "LMTKRunner", "split_batch"]


BATCH_SIZE_SCOPES = ("per_process", "total")


def split_batch(dataloader: dict, world_size: int) -> tuple[dict, str]:
    """``dataloader`` with the batch size one process loads, and a line that states it for the log.

    ``batch_size_scope="total"`` (the paper configs) makes ``batch_size`` the batch of one training step
    over all processes: each of ``world_size`` processes loads ``batch_size / world_size`` items, so a
    run trains the same recipe on 1, 2 or 8 GPUs; a total that does not divide is refused.
    ``"per_process"`` (mmengine's meaning, the default) gives each process ``batch_size`` items.
    """
    dataloader = dict(dataloader)
    scope = dataloader.pop("batch_size_scope", "per_process")
    if scope not in BATCH_SIZE_SCOPES:
        raise ValueError(
            f"batch_size_scope={scope!r} is not one of {', '.join(map(repr, BATCH_SIZE_SCOPES))}: 'total' splits "
            f"batch_size over the processes, 'per_process' gives each process batch_size items"
        )
    batch_size = int(dataloader.get("batch_size", 1))
    processes = f"{world_size} process{'es' if world_size > 1 else ''}"
    if scope == "total":
        if batch_size % world_size:
            raise ValueError(
                f"batch_size={batch_size} is the total batch (batch_size_scope='total') and does not divide "
                f"over {processes}; choose a total that {world_size} divides (e.g. "
                f"{max(world_size, batch_size // world_size * world_size)}) or another number of processes"
            )
        dataloader["batch_size"] = batch_size // world_size
    per_process = dataloader.get("batch_size", 1)
    return dataloader, f"batch: total {per_process * world_size} = {processes} x {per_process}"


def _is_lmtk(cfg) -> bool:
    return isinstance(cfg, dict) and isinstance(cfg.get("type"), str) and kind_of(cfg["type"]) is not None


def _stop_loader_workers(loop) -> None:
    """End the training loader's worker processes once training is over.

    Left to the garbage collector, a runner's cycle of objects could be torn down queues first, and then
    each worker's join waited out its 5 s timeout (10 s for two workers, at some later collection).
    """
    loader = getattr(loop, "dataloader", None)
    iterator = getattr(getattr(loop, "dataloader_iterator", None), "_iterator", None)
    if hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
    if getattr(loader, "_iterator", None) is iterator and iterator is not None:
        loader._iterator = None  # a later iter(loader) starts new workers instead of reusing these


class _HeldBackConsole:
    """Holds back the console's info lines (the environment and config dump: hundreds of lines) until
    training starts, so that an error of the set-up is the last line, not one after the dump; the log
    file gets them at once. Warnings pass."""

    def __init__(self, logger: logging.Logger) -> None:
        self.held: list[tuple[logging.Handler, logging.LogRecord]] = []
        consoles = [
            handler
            for handler in logger.handlers
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
        ]
        self.filters = [(handler, functools.partial(self._hold, handler)) for handler in consoles]
        for handler, hold in self.filters:
            handler.addFilter(hold)

    def _hold(self, handler: logging.Handler, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        self.held.append((handler, record))
        return False

    def end(self, show: bool) -> None:
        """Stop holding back; ``show`` the lines held so far (training starts) or drop them (it failed)."""
        for handler, hold in self.filters:
            handler.removeFilter(hold)
        self.filters = []
        held, self.held = self.held, []
        for handler, record in held if show else ():
            handler.handle(record)


class LMTKRunner(Runner):
    """A Runner whose model and dataset configs may name lmtk components (``lmtk.LIA.v1``).

    Everything else (hooks, optimizers, schedulers, loops) is mmengine's; lmtk's behaviour around
    training lives in hooks: :class:`~lmtk.engine.hooks.AtomicCheckpointHook` (the configs' checkpoint
    hook), and two that the runner registers itself: :class:`~lmtk.engine.hooks.TrainingStartHook` (the
    checks before the first iteration; it sets ``training_started``, which tells errors of the set-up
    from later ones) and :class:`~lmtk.engine.schedules.ScheduleLengthHook` (schedule lengths on resume).
    A dataloader's ``batch_size_scope="total"`` splits its ``batch_size`` over the processes
    (:func:`split_batch`). A start that fails before training leaves nothing behind in the work dir, and
    :meth:`train` holds the work dir so that a second run started into it stops at once.

    A config's ``fast_paths = dict(dtype="bfloat16", channels_last=True, blur="folded", compile="default")``
    (:class:`~lmtk.fast_paths.FastPaths`) is switched on for training: the model-side paths when the
    model is built, the dtype through the optim wrappers (bf16: :class:`AutocastOptimWrapper`, fp16:
    ``AmpOptimWrapper``). None of them changes a parameter or the checkpoint format.

    Checkpoints (``resume``, ``load_from``) are read by :func:`lmtk.checkpoint.load_checkpoint_file`,
    which runs no code from them; ``trust_checkpoint = True`` reads one that needs more, for a file the
    user vouches for (``tools/train.py --trust-checkpoint``).
    """

    training_started = False
    trust_checkpoint = False

    def __init__(self, *args, **kwargs) -> None:
        # what this start writes before training (removed again if it fails): folders, config copy
        work_dir = kwargs.get("work_dir", args[1] if len(args) > 1 else None)
        self._made_folders = missing_folders(work_dir) if work_dir is not None else []
        self._made_log_dir: str | None = None
        self._replaced_config: tuple[str, bytes | None] | None = None
        self._console: _HeldBackConsole | None = None
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            self._undo_start()
            raise
        self.register_hook(TrainingStartHook())
        self.register_hook(ScheduleLengthHook())

    def mark_training_started(self) -> None:
        """Called by :class:`TrainingStartHook` once the start has succeeded: later errors are training's,
        and the console shows the lines held back so far."""
        self.training_started = True
        if self._console is not None:
            self._console.end(show=True)

    @functools.cached_property
    def _instance_name(self) -> str:
        # mmengine hands out the logger and visualizer of an earlier runner of this process that had the
        # same name, with its log folder: a second run (or one after a failed start, whose folder is gone)
        # would write there. The experiment name is only unique to the second, so a counter is added.
        return f"{self._experiment_name}#{next(_RUNNERS_IN_THIS_PROCESS)}"

    def build_logger(self, *args, **kwargs):
        logger = super().build_logger(*args, **{"name": self._instance_name, **kwargs})
        self._console = _HeldBackConsole(logger)
        return logger

    def build_visualizer(self, visualizer=None):
        if isinstance(visualizer, dict):
            visualizer = {**visualizer, "name": self._instance_name}
        return super().build_visualizer(visualizer)

    def setup_env(self, env_cfg) -> None:
        super().setup_env(env_cfg)
        log_dir = osp.join(self._work_dir, self._timestamp)  # made next, unless a run of this second has it
        self._made_log_dir = None if osp.exists(log_dir) else log_dir

    def dump_config(self) -> None:
        name = osp.basename(self.cfg.filename) if self.cfg.filename is not None else f"{self.timestamp}.py"
        path = osp.join(self.work_dir, name)  # where mmengine writes it
        self._replaced_config = (path, Path(path).read_bytes() if osp.isfile(path) else None)
        super().dump_config()

    def _undo_start(self) -> None:
        """A start that failed before training leaves nothing: its log folder, its copy of the config (an
        earlier run's copy comes back) and the work dir folders it made go; the console's held-back
        info lines are dropped, so the error is the last line."""
        if self._console is not None:
            self._console.end(show=False)
        if not is_main_process():
            return
        logger = getattr(self, "logger", None)
        for handler in list(getattr(logger, "handlers", [])):
            if isinstance(handler, logging.FileHandler):  # its file is about to go
                handler.close()
                logger.removeHandler(handler)
        if self._replaced_config is not None:
            path, previous = self._replaced_config
            with contextlib.suppress(OSError):
                if previous is None:
                    os.remove(path)
                else:
                    Path(path).write_bytes(previous)
        if self._made_log_dir is not None:
            shutil.rmtree(self._made_log_dir, ignore_errors=True)  # this run's alone
        for folder in self._made_folders:  # deepest first
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only if nothing else is in it

    @property
    def fast_paths(self) -> FastPaths:
        """The config's ``fast_paths`` (all off without one)."""
        return FastPaths.from_config(self.cfg.get("fast_paths"))

    def build_model(self, model):
        paths = self.fast_paths  # checked before the (slow) model build
        if paths.dtype == "float16" and not torch.cuda.is_available():
            raise ValueError(
                "float16 training runs under mmengine's AmpOptimWrapper, which needs a GPU; "
                "on a CPU use dtype bfloat16"
            )
        if _is_lmtk(model):
            model = build(copy.deepcopy(dict(model)), "models")
        model = super().build_model(model)
        if paths != FastPaths():
            apply_fast_paths(model, paths, training=True)  # before DDP wraps the networks
            self.logger.info(f"fast paths: {paths.describe()}")
        return model

    def build_optim_wrapper(self, optim_wrapper):
        dtype = self.fast_paths.dtype
        if isinstance(optim_wrapper, dict) and dtype != "float32":
            optim_wrapper = mixed_precision_optim_wrappers(optim_wrapper, dtype)
        return super().build_optim_wrapper(optim_wrapper)

    @staticmethod
    def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
        if isinstance(dataloader, dict):
            dataloader, batch = split_batch(dataloader, get_world_size())
            MMLogger.get_current_instance().info(batch)
        if isinstance(dataloader, dict) and _is_lmtk(dataloader.get("dataset")):
            dataloader = copy.deepcopy(dict(dataloader))
            dataloader["dataset"] = build(dict(dataloader["dataset"]), "datasets")
        return Runner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)

    def train(self):
        """Train, holding the work dir (:func:`~lmtk.engine.work_dir_lock.work_dir_lock`) so that a second
        run started into it stops at once instead of overwriting this one's checkpoints."""
        try:
            with work_dir_lock(self.work_dir) if is_main_process() else contextlib.nullcontext():
                return super().train()
        except BaseException:
            if not self.training_started:
                self._undo_start()
            raise
        finally:
            _stop_loader_workers(self._train_loop)

    def resume(self, *args, **kwargs):
        self._resuming = True  # load_checkpoint then loads strictly
        try:
            super().resume(*args, **kwargs)
        finally:
            self._resuming = False

    def load_checkpoint(self, filename, *args, **kwargs):
        self._checkpoint_read = False  # set once the file is read: a later error is not the file's
        resuming = getattr(self, "_resuming", False)
        if resuming:
            # resuming loaded non-strictly: weights of another shape were skipped with a warning, and
            # the optimizer's state for them then failed in the first step
            kwargs["strict"] = True
        if len(args) < 3:  # (map_location, strict, revise_keys)
            kwargs.setdefault("revise_keys", WRAPPER_PREFIXES)  # also reads what distributed runs wrote
        try:
            return self._load_checkpoint(filename, *args, **kwargs)
        except CheckpointError:  # lmtk's loader said what is wrong with the file
            raise
        except Exception as error:
            if not self._checkpoint_read and "://" not in str(filename):
                raise unreadable_checkpoint(filename, error) from error
            if not resuming or not isinstance(error, RuntimeError):
                raise
            details = [line.strip() for line in str(error).splitlines() if line.strip()]
            first = next((line for line in details if "mismatch" in line or "key" in line), details[0])
            raise ValueError(
                f"cannot resume from {filename}: its model differs from the config's ({first}); "
                f"resume with the config it was trained with, or train into a new --work-dir"
            ) from error

    def _load_checkpoint(self, filename, map_location="cpu", strict=False, revise_keys=(("^module.", ""),)):
        """mmengine's ``Runner.load_checkpoint``, reading the file with lmtk's loader: never code from it.

        ``trust_checkpoint`` (``tools/train.py --trust-checkpoint``) reads a file that needs more than
        lmtk's and mmengine's checkpoints hold; a URL goes to mmengine's loaders, weights-only too.
        """
        trust = getattr(self, "trust_checkpoint", False)
        if "://" in str(filename):
            with safe_unpickling() if not trust else contextlib.nullcontext():
                checkpoint = _load_checkpoint(filename, map_location=map_location)
        else:
            checkpoint = load_checkpoint_file(filename, trust=trust, map_location=map_location)
        meta = checkpoint.get("meta") if isinstance(checkpoint, dict) else None
        if getattr(self, "_resuming", False) and not (
            isinstance(meta, dict) and {"epoch", "iter"} <= set(meta)
        ):
            raise CheckpointError(
                f"cannot resume from {filename}: it holds weights only, not a run's iteration and optimizer "
                f"state; resume from a training checkpoint (a work dir's iter_N.pth), or start a new run "
                f"from these weights with --cfg-options load_from={filename}"
            )
        if isinstance(meta, dict) and isinstance(meta.get("config"), str):
            # Runner.resume runs this text as Python (Config.fromstring): pass it on as data only
            try:
                meta["config"] = read_stored_config(meta["config"], str(filename), trust=trust).pretty_text
            except ValueError as error:
                raise CheckpointError(str(error)) from None
        self._checkpoint_read = True
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict, revise_keys=list(revise_keys))
        self._has_loaded = True
        self.logger.info(f"Load checkpoint from {filename}")
        return checkpoint
