"""mmengine's CheckpointHook, whose latest checkpoint is never a partial or a deleted file."""

from __future__ import annotations

import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

__all__ = ["AtomicCheckpointHook", "AtomicLocalBackend"]


@register_backend("lmtk_atomic_local")
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose ``put`` writes a temporary file beside the target and renames
    it: a write that fails half-way (a full disk, an interrupt) leaves the previous file as it was."""

    def put(self, obj: bytes, filepath) -> None:
        filepath = str(filepath)
        temporary = osp.join(osp.dirname(filepath), f".{osp.basename(filepath)}.partial")
        try:
            super().put(obj, temporary)
        except BaseException:
            if osp.exists(temporary):
                os.remove(temporary)
            raise
        os.replace(temporary, filepath)


class _DeferredRemoval:
    """A file backend whose removals wait until :meth:`flush`: the hook removes the oldest checkpoint
    before it writes the new one."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.pending: list[str] = []

    def remove(self, path) -> None:
        self.pending.append(str(path))

    rmtree = remove

    def flush(self, keep: str) -> None:
        """Remove the paths put off, except ``keep`` (a name reused for each checkpoint: ``latest.pth``)."""
        for path in self.pending:
            if osp.abspath(path) == osp.abspath(keep):
                continue
            if self.backend.isfile(path):
                self.backend.remove(path)
            elif self.backend.isdir(path):
                self.backend.rmtree(path)
        self.pending = []

    def __getattr__(self, name):
        if name == "backend":  # not set yet (a copy being made)
            raise AttributeError(name)
        return getattr(self.backend, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same options), made safe against a write that fails.

    - Each checkpoint is written to a temporary file and renamed (:class:`AtomicLocalBackend`, for a
      local ``out_dir`` without ``backend_args``), so ``last_checkpoint`` names only complete files.
    - The checkpoints that ``max_keep_ckpts`` drops are removed only once the new one is in place: with
      ``max_keep_ckpts=1`` a failed write used to leave none.
    - A checkpoint holds the keys of a single-process run (``generator.*``), also under distributed
      training, where each network is its own DDP (``generator.module.*``); resuming and
      ``lmtk.load_model`` read either.
    - A fresh run (not resumed) forgets the work dir's earlier run once training starts: its
      ``last_checkpoint`` goes, so ``--resume`` means this run, and a start that fails changes nothing.

    Example::

        default_hooks = dict(checkpoint=dict(type="AtomicCheckpointHook", interval=5000, max_keep_ckpts=3))
    """

    def before_train(self, runner) -> None:
        out_dir = str(self.out_dir or runner.work_dir)
        if self.backend_args is None and self.file_client_args is None and "://" not in out_dir:
            self.backend_args = dict(backend="lmtk_atomic_local")
        super().before_train(runner)
        if not runner._resume and is_main_process():  # before_train runs once the start has succeeded
            last = osp.join(runner.work_dir, "last_checkpoint")
            if osp.isfile(last):
                os.remove(last)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        backend = self.file_backend
        self.file_backend = deferred = _DeferredRemoval(backend)
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            self.file_backend = backend
        if is_main_process():
            deferred.flush(keep=self.last_ckpt)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        wrapped = [name for name, child in model.named_children() if is_model_wrapper(child)]
        if wrapped:
            checkpoint["state_dict"] = _without_wrappers(checkpoint["state_dict"], wrapped)


def _without_wrappers(state_dict, wrapped: list[str]):
    """``state_dict`` with ``NAME.module.`` read as ``NAME.`` for each wrapped network ``NAME``."""

    def unwrap(key: str) -> str:
        for name in wrapped:
            if key == f"{name}.module" or key.startswith(f"{name}.module."):
                return name + key[len(f"{name}.module") :]
        return key

    unwrapped = type(state_dict)((unwrap(key), value) for key, value in state_dict.items())
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:  # per-module versions that load_state_dict reads
        unwrapped._metadata = type(metadata)((unwrap(key), value) for key, value in metadata.items())
    return unwrapped
