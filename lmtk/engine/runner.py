"""mmengine's Runner, building lmtk's models and datasets through the catalogue registries."""

from __future__ import annotations

import contextlib
import copy
import difflib
import functools
import inspect
import logging
import os
import os.path as osp
import shutil
from pathlib import Path

import torch
from mmengine.dist import get_world_size, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import MMLogger, print_log
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
from .hooks.deferred_runtime_info_hook import flush_deferred_logs
from .work_dir_lock import work_dir_lock

__all__ = ["BATCH_SIZE_SCOPES", "LMTKRunner", "split_batch"]


def _resolve_max_iters(cfg, max_iters: int):
    """``cfg`` with every ``end`` / ``T_max`` given as ``"max_iters"`` replaced by ``max_iters``."""
    if isinstance(cfg, list | tuple):
        return [_resolve_max_iters(item, max_iters) for item in cfg]
    if isinstance(cfg, dict):
        resolved = {key: _resolve_max_iters(value, max_iters) for key, value in cfg.items()}
        for key in ("end", "T_max"):
            if resolved.get(key) == "max_iters":
                resolved[key] = max_iters
        return resolved
    return cfg


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


_LENGTH_KEYS = ("end", "T_max", "total_iters")  # a scheduler's length, set when it is built


def _follows_max_iters(cfg) -> bool:
    return isinstance(cfg, dict) and any(cfg.get(key) == "max_iters" for key in ("end", "T_max"))


def _scheduler_configs(cfg, name: str | None) -> list:
    """The scheduler configs that mmengine builds for the optimizer ``name`` (None: the only one)."""
    if name is not None and isinstance(cfg, dict) and "type" not in cfg:
        cfg = cfg[name]
    return list(cfg) if isinstance(cfg, list | tuple) else [cfg]


class _DeferredRemoval:
    """A CheckpointHook's file backend whose removals wait until the next checkpoint is in place.

    The hook deletes the oldest checkpoint before it writes the new one: with ``max_keep_ckpts=1`` a
    failed write would leave none, and ``last_checkpoint`` would name the deleted file.
    """

    def __init__(self, backend) -> None:
        self.backend = backend
        self.pending: list[str] = []

    def remove(self, path) -> None:
        self.pending.append(str(path))

    rmtree = remove

    def flush(self, keep: str) -> None:
        """Remove the checkpoints put off so far, except ``keep`` (a name reused for each checkpoint)."""
        while self.pending:
            path = self.pending.pop(0)
            if osp.abspath(path) == osp.abspath(keep):
                continue
            if self.backend.isfile(path):
                self.backend.remove(path)
            elif self.backend.isdir(path):
                self.backend.rmtree(path)

    def __getattr__(self, name):
        if name == "backend":  # not set yet (a copy being made)
            raise AttributeError(name)
        return getattr(self.backend, name)


def _is_lmtk(cfg) -> bool:
    return isinstance(cfg, dict) and isinstance(cfg.get("type"), str) and kind_of(cfg["type"]) is not None


def _check_checkpoint_options(hooks) -> None:
    """CheckpointHook hands options it does not know to ``save_checkpoint``, so a misspelt one (``intervals``)
    failed at the first save, after the training up to it."""
    accepted = set(inspect.signature(Runner.save_checkpoint).parameters)
    options = [*inspect.signature(CheckpointHook.__init__).parameters][1:-1]  # without self and **kwargs
    for hook in hooks:
        if isinstance(hook, CheckpointHook):
            for key in sorted(set(getattr(hook, "args", {})) - accepted):
                close = difflib.get_close_matches(key, options, n=1)
                meant = f"; did you mean {close[0]!r}?" if close else f"; it takes {', '.join(options)}"
                raise ValueError(f"default_hooks.checkpoint has no option {key!r}{meant}")


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


@contextlib.contextmanager
def _networks_unwrapped(model: torch.nn.Module):
    """The model's networks without their distributed wrappers while it is saved.

    Distributed training wraps each network in its own DDP (``MMSeparateDistributedDataParallel``), and
    mmengine saves ``model.state_dict()``, whose keys would read ``generator.module.*``; a checkpoint
    must hold the keys of a single-process run, which resuming and ``lmtk.load_model`` read.
    """
    model = model.module if is_model_wrapper(model) else model
    wrapped = {name: child for name, child in model.named_children() if is_model_wrapper(child)}
    for name, child in wrapped.items():
        model._modules[name] = child.module
    try:
        yield
    finally:
        model._modules.update(wrapped)


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

    Everything else (hooks, optimizers, schedulers, loops) is mmengine's. Checkpoints are written to a
    temporary file and renamed, and the checkpoints that ``max_keep_ckpts`` drops are removed only after
    that, so the latest checkpoint is never a partial or a deleted file. A parameter scheduler's ``end``
    or ``T_max`` may be ``"max_iters"``, the training length, so a schedule that ends with training (a
    cosine decay to zero) follows ``--cfg-options train_cfg.max_iters=...``, also when the run is resumed
    with another length. Training stops before its first iteration when the dataset's image size is not
    the model's. A dataloader's ``batch_size_scope="total"`` splits its ``batch_size`` over the processes
    (:func:`split_batch`). ``training_started`` tells errors of the set-up (dataset, checkpoint) from later ones.

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
        self._length_from_max_iters: list[tuple[object, dict]] = []
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

    def build_logger(self, *args, **kwargs):
        logger = super().build_logger(*args, **kwargs)
        self._console = _HeldBackConsole(logger)
        return logger

    def build_visualizer(self, visualizer=None):
        if isinstance(visualizer, dict):
            # mmengine hands out the visualizer of an earlier runner of this process that had the same
            # name, with its log folder: a second run (or one after a failed start, whose folder is gone)
            # would write there. A name of this run's own gives it its own.
            visualizer = {**visualizer, "name": self._experiment_name}
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

    def build_param_scheduler(self, scheduler):
        max_iters = getattr(self.train_loop, "max_iters", None)
        if max_iters is None:
            return super().build_param_scheduler(scheduler)
        built = super().build_param_scheduler(_resolve_max_iters(scheduler, max_iters))
        for name, schedulers in built.items() if isinstance(built, dict) else [(None, built)]:
            for cfg, made in zip(_scheduler_configs(scheduler, name), schedulers, strict=True):
                if _follows_max_iters(cfg):  # its length as built now, which a resumed state must not undo
                    length = {k: made.__dict__[k] for k in _LENGTH_KEYS if k in made.__dict__}
                    self._length_from_max_iters.append((made, length))
        return built

    def build_train_loop(self, loop):
        loop = super().build_train_loop(loop)
        model = getattr(self.model, "module", self.model)
        model_size = getattr(model, "size", None)
        data_size = getattr(loop.dataloader.dataset, "size", None)
        if isinstance(model_size, int) and data_size is not None and tuple(data_size) != (model_size,) * 2:
            shown = data_size[0] if data_size[0] == data_size[1] else tuple(data_size)
            raise ValueError(
                f"train_dataloader.dataset.size={shown} but model.size={model_size}: the model takes "
                f"{model_size}x{model_size} images; give both the same size"
            )
        return loop

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
        for scheduler, length in self._length_from_max_iters:
            scheduler.__dict__.update(length)

    def call_hook(self, fn_name: str, **kwargs) -> None:
        if fn_name == "after_load_checkpoint":
            self._checkpoint_read = True
        if fn_name == "before_train":  # resumed by now: the last moment to refuse cheaply
            _check_checkpoint_options(self.hooks)
            max_iters = getattr(self.train_loop, "max_iters", None)
            if max_iters is not None and self.iter >= max_iters:
                print_log(
                    f"nothing to train: the run is at iteration {self.iter} and train_cfg.max_iters is "
                    f"{max_iters}; raise it (--cfg-options train_cfg.max_iters=N) to train on",
                    logger="current",
                    level=logging.WARNING,
                )
            self.training_started = True
            if self._console is not None:
                self._console.end(show=True)
        super().call_hook(fn_name, **kwargs)
        if fn_name == "before_train":  # where CheckpointHook makes its file backend
            for hook in self.hooks:
                backend = getattr(hook, "file_backend", None)
                if isinstance(hook, CheckpointHook) and not isinstance(backend, _DeferredRemoval | None):
                    hook.file_backend = _DeferredRemoval(backend)

    def load_checkpoint(self, filename, *args, **kwargs):
        self._checkpoint_read = False  # set by the after_load_checkpoint hook: reading went well
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
        if isinstance(meta, dict) and isinstance(meta.get("config"), str):
            # Runner.resume runs this text as Python (Config.fromstring): pass it on as data only
            try:
                meta["config"] = read_stored_config(meta["config"], str(filename), trust=trust).pretty_text
            except ValueError as error:
                raise CheckpointError(str(error)) from None
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict, revise_keys=list(revise_keys))
        self._has_loaded = True
        self.logger.info(f"Load checkpoint from {filename}")
        return checkpoint

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        flush_deferred_logs(self)  # the checkpoint keeps the message hub: every logged value belongs in it
        final = osp.join(out_dir, filename)
        temporary = osp.join(osp.dirname(final), f".{osp.basename(final)}.partial")
        # only the main process writes: another one would touch its unfinished file
        main = is_main_process()
        if main:
            os.makedirs(osp.dirname(final), exist_ok=True)
        try:
            with _networks_unwrapped(self.model):
                super().save_checkpoint(out_dir, osp.relpath(temporary, out_dir), *args, **kwargs)
        except BaseException:
            if main and osp.exists(temporary):
                os.remove(temporary)
            raise
        if main:
            os.replace(temporary, final)
            for hook in self.hooks:
                if isinstance(getattr(hook, "file_backend", None), _DeferredRemoval):
                    hook.file_backend.flush(keep=final)
