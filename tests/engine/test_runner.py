"""LMTKRunner's dataloader settings: a total batch split over the processes."""

import pytest

from lmtk.engine.runner import split_batch


@pytest.mark.parametrize("world_size, per_process", [(1, 32), (2, 16), (4, 8), (32, 1)])
def test_a_total_batch_is_split_over_the_processes(world_size, per_process):
    loader = dict(batch_size=32, batch_size_scope="total", num_workers=8)
    split, _ = split_batch(loader, world_size)
    assert split == dict(batch_size=per_process, num_workers=8)  # the scope is lmtk's, not DataLoader's
    assert loader["batch_size"] == 32  # the config is left as it was


def test_a_per_process_batch_is_the_default_and_kept():
    assert split_batch(dict(batch_size=8), 4)[0] == dict(batch_size=8)
    assert split_batch(dict(batch_size=8, batch_size_scope="per_process"), 4)[0] == dict(batch_size=8)


def test_the_log_line_states_total_and_per_process_batch():
    assert (
        split_batch(dict(batch_size=32, batch_size_scope="total"), 2)[1]
        == "batch: total 32 = 2 processes x 16"
    )
    assert split_batch(dict(batch_size=8), 4)[1] == "batch: total 32 = 4 processes x 8"
    assert (
        split_batch(dict(batch_size=32, batch_size_scope="total"), 1)[1] == "batch: total 32 = 1 process x 32"
    )


def test_a_total_that_does_not_divide_is_refused():
    with pytest.raises(
        ValueError, match=r"batch_size=32 is the total batch .* does not divide over 3 processes"
    ):
        split_batch(dict(batch_size=32, batch_size_scope="total"), 3)
    with pytest.raises(ValueError, match="batch_size_scope='all' is not one of 'per_process', 'total'"):
        split_batch(dict(batch_size=32, batch_size_scope="all"), 1)
