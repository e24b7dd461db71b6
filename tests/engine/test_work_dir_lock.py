"""work_dir_lock: one live training run per work dir; a lock whose process has ended is taken over."""

import json
import os
import socket
import subprocess
import sys

import pytest

from lmtk.engine.work_dir_lock import LOCK_NAME, WorkDirBusyError, check_work_dir_free, work_dir_lock

HOLD = """
import sys, time
from lmtk.engine.work_dir_lock import work_dir_lock
with work_dir_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_process_cannot_take_a_held_work_dir(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WorkDirBusyError, match=f"process {holder.pid} on {socket.gethostname()}"):
            check_work_dir_free(tmp_path)
        with pytest.raises(WorkDirBusyError, match="train into another --work-dir"), work_dir_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    check_work_dir_free(tmp_path)  # killed: its lock is stale
    with work_dir_lock(tmp_path) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()


def test_a_lock_from_another_host_is_respected_and_an_unreadable_one_is_not(tmp_path):
    lock = tmp_path / LOCK_NAME
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": 0}))
    with pytest.raises(WorkDirBusyError, match=f"on elsewhere.*delete {lock}"):
        check_work_dir_free(tmp_path)
    lock.write_text("{")  # a run killed while writing it
    (tmp_path / ".iter_4.pth.partial").write_bytes(b"cut short")
    (tmp_path / "iter_2.pth").write_bytes(b"kept")
    with work_dir_lock(tmp_path):
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME, "iter_2.pth"]
