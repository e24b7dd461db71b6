"""One training run per work dir: a second run would overwrite the first one's checkpoints."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from ..processes import process_alive

__all__ = ["LOCK_NAME", "WorkDirBusyError", "check_work_dir_free", "work_dir_lock"]

LOCK_NAME = ".training.lock"


class WorkDirBusyError(ValueError):
    """Another live training run holds the work dir."""


def _holder(lock: Path) -> dict | None:
    """The run that holds ``lock``, or None when the lock is stale (its process has ended)."""
    try:
        holder = json.loads(lock.read_text())
        pid, host = int(holder["pid"]), str(holder["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable: a run killed while writing it
    if host == socket.gethostname() and (pid == os.getpid() or not process_alive(pid)):
        return None
    return holder


def _remove_partial_checkpoints(work_dir: Path) -> None:
    """Checkpoints a killed run was writing (``.iter_N.pth.partial``); no live run owns them now."""
    for partial in work_dir.glob(".*.partial"):
        with contextlib.suppress(OSError):
            partial.unlink()


def check_work_dir_free(work_dir: str | os.PathLike) -> None:
    """Raise :class:`WorkDirBusyError` when a live run holds ``work_dir`` (a check before the slow
    set-up; :func:`work_dir_lock` then takes it)."""
    lock = Path(work_dir) / LOCK_NAME
    holder = _holder(lock) if lock.is_file() else None
    if holder is not None:
        raise _busy(lock, holder)


def _busy(lock: Path, holder: dict) -> WorkDirBusyError:
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(holder.get("started", 0)))
    return WorkDirBusyError(
        f"another training run (process {holder['pid']} on {holder['host']}, started {started}) is writing "
        f"to {lock.parent}; wait for it, train into another --work-dir, or delete {lock} if no run uses it"
    )


@contextlib.contextmanager
def work_dir_lock(work_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold ``work_dir`` for one training run (its main process) until the block ends.

    The lock is a file naming the process and host; a lock whose process has ended on this host is
    taken over, and the partial checkpoints that run left are removed.

    Raises:
        WorkDirBusyError: a live run (or one on another host) holds the work dir.
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    lock = work_dir / LOCK_NAME
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
    for _ in range(2):  # a stale lock is removed once, then taken
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(lock)
            if holder is not None:
                raise _busy(lock, holder) from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        with os.fdopen(fd, "w") as file:
            file.write(record)
        break
    else:
        raise WorkDirBusyError(f"could not take {lock}: another run took it at the same moment")
    _remove_partial_checkpoints(work_dir)
    try:
        yield lock
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(lock.read_text()).get("pid") == os.getpid():
                lock.unlink()
