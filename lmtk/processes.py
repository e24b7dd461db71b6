"""Whether the process that wrote a file is still alive: what a killed run left behind may be removed."""

from __future__ import annotations

import os
import socket
import zlib

__all__ = ["host_id", "process_alive"]


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (one of another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def host_id() -> str:
    """This machine in 8 hex digits (a checksum of its host name), short enough for a file name."""
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"
