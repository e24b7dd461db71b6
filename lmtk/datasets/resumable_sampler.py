"""Endless shuffled draws that a resumed run can start at any point without loading the ones before.

A training run draws items forever from a shuffled order (mmengine's ``InfiniteSampler``); resuming it
exactly used to mean loading every batch up to the resumed iteration again, since each item's random
choices (which frames, which flip) came from its worker's random stream. Here every draw carries its
own seed, derived from the sampler's seed and the draw's position in the stream, and the dataset makes
the draw's random choices under that seed (:func:`seeded`). So an item depends only on its position:
not on the number of workers, not on which worker loads it, and a resumed run starts the stream at
its position directly (:meth:`ResumableInfiniteSampler.start_at`).

Example:
    >>> sampler = ResumableInfiniteSampler(range(5), seed=0)
    >>> stream = iter(sampler)
    >>> first = [next(stream) for _ in range(7)]
    >>> sampler.start_at(4)
    >>> next(iter(sampler)) == first[4]
    True
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sized
from typing import NamedTuple

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

__all__ = ["Draw", "ResumableInfiniteSampler", "seeded"]


class Draw(NamedTuple):
    """One draw of a dataset item: which item, and the seed of its random choices."""

    index: int
    seed: int


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Python's, NumPy's and torch's global CPU generators seeded with ``seed`` inside the block, and
    put back as they were after it (the caller's own random stream is not disturbed). The GPU's
    generators are left alone (``torch.manual_seed`` would reseed them too)."""
    saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])


@DATA_SAMPLERS.register_module()
class ResumableInfiniteSampler(Sampler):
    """mmengine's ``InfiniteSampler`` (a new shuffled order of the dataset each pass, draws dealt out
    to the ranks in turn) yielding :class:`Draw` s, and able to start at any draw.

    The dataset must accept a :class:`Draw` as its index (``lmtk.VideoPairDataset.v1`` and the
    datasets built on it do).

    Args:
        dataset: the dataset (only its length is used).
        shuffle: a new random order each pass (False: 0, 1, 2, ... again and again).
        seed: the seed of the orders and of every draw; None takes one shared by all ranks.
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: int | None = None) -> None:
        self.size = len(dataset)
        if self.size == 0:
            raise ValueError("the dataset is empty: there is nothing to draw")
        self.rank, self.world_size = get_dist_info()
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.start = 0
        self._order: tuple[int, torch.Tensor] | None = None

    def start_at(self, draws: int) -> None:
        """Make the next iteration skip this rank's first ``draws`` draws (without producing them)."""
        if draws < 0:
            raise ValueError(f"draws must be >= 0, got {draws}")
        self.start = int(draws)

    def __iter__(self) -> Iterator[Draw]:
        position = self.start * self.world_size + self.rank  # in the stream shared by all ranks
        while True:
            passes, offset = divmod(position, self.size)
            yield Draw(self._index(passes, offset), self._draw_seed(position))
            position += self.world_size

    def _index(self, passes: int, offset: int) -> int:
        if not self.shuffle:
            return offset
        if self._order is None or self._order[0] != passes:
            generator = torch.Generator().manual_seed(self.seed + passes)
            self._order = passes, torch.randperm(self.size, generator=generator)
        return int(self._order[1][offset])

    def _draw_seed(self, position: int) -> int:
        return int(np.random.SeedSequence([self.seed, position]).generate_state(1)[0])

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        """Unused (the stream never ends); kept for mmengine's ``DistSamplerSeedHook``."""
