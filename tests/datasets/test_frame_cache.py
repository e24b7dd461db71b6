import numpy as np
import pytest

from lmtk.datasets.frame_cache import FrameCache


def frames(nbytes: int) -> np.ndarray:
    return np.zeros(nbytes, np.uint8)


def test_drops_least_recently_used_entries_past_capacity():
    cache = FrameCache(capacity_bytes=300)
    for key in "abc":
        cache.put(key, frames(100))
    cache.get("a")  # "b" is now the least recently used
    cache.put("d", frames(150))
    assert sorted(cache.keys()) == ["a", "d"]
    assert cache.nbytes == 250


def test_byte_count_follows_replacements_and_removals():
    cache = FrameCache(capacity_bytes=1000)
    cache.put("a", frames(100))
    cache.put("a", frames(300))
    cache.put("b", frames(50))
    assert cache.nbytes == 350
    cache.pop("a")
    cache.pop("missing")
    assert cache.nbytes == 50 and len(cache) == 1
    assert cache.get("a") is None


def test_an_entry_larger_than_the_capacity_does_not_fit():
    cache = FrameCache(capacity_bytes=100)
    assert cache.fits(100) and not cache.fits(101)
    with pytest.raises(ValueError, match="capacity_bytes"):
        FrameCache(capacity_bytes=-1)
