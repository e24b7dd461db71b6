import itertools
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lmtk.datasets import VideoPairDataset
from lmtk.datasets import resumable_sampler as module
from lmtk.datasets.resumable_sampler import Draw, ResumableInfiniteSampler, seeded


def take(sampler, count):
    return list(itertools.islice(iter(sampler), count))


def test_each_pass_is_a_new_permutation_and_every_draw_has_its_own_seed():
    draws = take(ResumableInfiniteSampler(range(7), seed=3), 21)
    passes = [sorted(d.index for d in draws[i : i + 7]) for i in (0, 7, 14)]
    assert passes == [list(range(7))] * 3
    assert [d.index for d in draws[:7]] != [d.index for d in draws[7:14]]
    assert len({d.seed for d in draws}) == 21
    assert [d.index for d in take(ResumableInfiniteSampler(range(4), shuffle=False, seed=0), 6)] == [
        0,
        1,
        2,
        3,
        0,
        1,
    ]


def test_starting_part_way_gives_the_rest_of_the_same_stream():
    stream = take(ResumableInfiniteSampler(range(5), seed=0), 23)
    sampler = ResumableInfiniteSampler(range(5), seed=0)
    for start in (1, 5, 12):  # within the first pass, at a pass boundary, in a later pass
        sampler.start_at(start)
        assert take(sampler, 23 - start) == stream[start:]
    with pytest.raises(ValueError, match=">= 0"):
        sampler.start_at(-1)
    with pytest.raises(ValueError, match="empty"):
        ResumableInfiniteSampler([], seed=0)


def test_ranks_share_one_stream_in_turn(monkeypatch):
    stream = take(ResumableInfiniteSampler(range(6), seed=1), 12)
    for rank in (0, 1):
        monkeypatch.setattr(module, "get_dist_info", lambda rank=rank: (rank, 2))
        sampler = ResumableInfiniteSampler(range(6), seed=1)
        assert take(sampler, 6) == stream[rank::2]
        sampler.start_at(2)  # this rank's third draw
        assert take(sampler, 4) == stream[rank + 4 :: 2]


def test_seeded_block_leaves_the_callers_generators_alone(monkeypatch):
    reseeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", reseeded.append)
    np.random.seed(5), random.seed(5), torch.manual_seed(5)
    expected = np.random.rand(), random.random(), torch.rand(()).item()
    np.random.seed(5), random.seed(5), torch.manual_seed(5)
    with seeded(11):
        inside = np.random.rand(), random.random(), torch.rand(()).item()
    with seeded(11):
        assert (np.random.rand(), random.random(), torch.rand(()).item()) == inside
    assert (np.random.rand(), random.random(), torch.rand(()).item()) == expected
    assert reseeded == [5, 5]  # only this test's own torch.manual_seed calls: the GPU's stream is not touched


def test_an_item_depends_on_its_draw_only(video_dir):
    dataset = VideoPairDataset(
        video_dir, split=None, size=32, pipeline=[dict(type="PairedRandomFlip", prob=0.5)]
    )
    draw = Draw(index=1, seed=1234)
    np.random.seed(0)
    first = dataset[draw]
    np.random.rand(100)  # the global stream moves on; the draw's item does not
    again = dataset[draw]
    assert first["frame_indices"] == again["frame_indices"]
    assert torch.equal(first["source"], again["source"]) and torch.equal(first["driving"], again["driving"])
    others = {dataset[Draw(1, seed)]["frame_indices"] for seed in range(20)}
    assert len(others) > 5  # different seeds, different pairs


def test_batches_do_not_depend_on_the_number_of_workers(video_dir):
    dataset = VideoPairDataset(
        video_dir, split=None, size=32, pipeline=[dict(type="PairedRandomFlip", prob=0.5)]
    )

    def batches(workers):
        loader = DataLoader(
            dataset, batch_size=3, sampler=ResumableInfiniteSampler(dataset, seed=7), num_workers=workers
        )
        return [batch for batch, _ in zip(loader, range(4))]

    for single, multi in zip(batches(0), batches(2), strict=True):
        assert single["video"] == multi["video"]
        assert torch.equal(single["source"], multi["source"])
        assert torch.equal(single["driving"], multi["driving"])
