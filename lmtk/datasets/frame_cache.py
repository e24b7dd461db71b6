"""A least-recently-used cache of decoded videos, bounded by the bytes it holds."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

import numpy as np


class FrameCache:
    """Decoded frames by key; adding past ``capacity_bytes`` drops the least recently used entries.

    Example:
        >>> cache = FrameCache(capacity_bytes=200)
        >>> cache.put("a", np.zeros(100, np.uint8)); cache.put("b", np.zeros(100, np.uint8))
        >>> cache.get("a") is not None  # "a" is now the most recently used
        True
        >>> cache.put("c", np.zeros(100, np.uint8)); sorted(cache.keys()), cache.nbytes
        (['a', 'c'], 200)
    """

    def __init__(self, capacity_bytes: int) -> None:
        if capacity_bytes < 0:
            raise ValueError(f"capacity_bytes must be >= 0, got {capacity_bytes}")
        self.capacity_bytes = int(capacity_bytes)
        self.nbytes = 0
        self._frames: OrderedDict[Hashable, np.ndarray] = OrderedDict()

    def fits(self, nbytes: int) -> bool:
        return nbytes <= self.capacity_bytes

    def get(self, key: Hashable) -> np.ndarray | None:
        frames = self._frames.get(key)
        if frames is not None:
            self._frames.move_to_end(key)
        return frames

    def put(self, key: Hashable, frames: np.ndarray) -> None:
        self.pop(key)
        self._frames[key] = frames
        self.nbytes += frames.nbytes
        while self.nbytes > self.capacity_bytes:
            _, dropped = self._frames.popitem(last=False)
            self.nbytes -= dropped.nbytes

    def pop(self, key: Hashable) -> None:
        frames = self._frames.pop(key, None)
        if frames is not None:
            self.nbytes -= frames.nbytes

    def keys(self):
        return self._frames.keys()

    def __len__(self) -> int:
        return len(self._frames)
