"""benchmarks.data_loading: the training data loader timed as the runner builds it."""

import numpy as np
import pytest
import torch

from benchmarks.data_loading import benchmark_data_loading
from lmtk.datasets.synthetic.writer import write_video

SIZE = 32


@pytest.fixture(scope="module")
def loader_cfg(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    (root / "train").mkdir()
    for name in ("id001#a#001", "id002#b#001", "id003#c#001"):
        write_video(root / "train" / f"{name}.mp4", rng.integers(0, 256, (8, SIZE, SIZE, 3), np.uint8))
    return dict(
        batch_size=2,
        num_workers=0,
        persistent_workers=False,
        sampler=dict(type="ResumableInfiniteSampler", shuffle=True),
        collate_fn=dict(type="default_collate"),
        dataset=dict(
            type="lmtk.VideoPairDataset.v1",
            data_root=str(root),
            split="train",
            size=SIZE,
            pipeline=[dict(type="PairedRandomFlip", prob=0.5)],
        ),
    )


def test_counts_the_samples_of_each_batch(loader_cfg):
    record = benchmark_data_loading(loader_cfg, batches=4, warmup=1)
    assert record["task"] == "data" and record["unit"] == "images/s"
    assert record["batch_size"] == 2 and record["num_workers"] == 0 and record["iters"] == 4
    assert record["items_per_iter"] == 2
    assert record["throughput"] == pytest.approx(8 / record["seconds_total"])
    assert record["ms_per_iter_median"] > 0 and record["peak_memory_bytes"] > 0
    assert "VideoPairDataset" in record["name"] and "videos=3" in record["dataset"]
    assert not record["pin_memory"]  # pinning is for copies to a GPU


def test_overrides_and_a_finite_sampler(loader_cfg):
    import lmtk.engine  # noqa: F401 - the samplers

    finite = dict(loader_cfg, sampler=dict(type="DefaultSampler", shuffle=False), batch_size=3)
    # three videos give one batch of 3 per epoch: later batches come from the next epochs
    record = benchmark_data_loading(finite, batches=3, warmup=0, num_workers=1)
    assert record["num_workers"] == 1 and record["items_per_iter"] == 3
    record = benchmark_data_loading(loader_cfg, batches=2, warmup=0, batch_size=1)
    assert record["batch_size"] == 1 and record["items_per_iter"] == 1


def test_bad_arguments_are_clear(loader_cfg, tmp_path):
    with pytest.raises(ValueError, match="batches must be >= 1"):
        benchmark_data_loading(loader_cfg, batches=0)
    with pytest.raises(ValueError, match="num_workers must be >= 0"):
        benchmark_data_loading(loader_cfg, num_workers=-1)
    missing = dict(loader_cfg, dataset=dict(loader_cfg["dataset"], data_root=str(tmp_path / "none")))
    with pytest.raises(FileNotFoundError, match="Dataset folder not found"):
        benchmark_data_loading(missing)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned copies to a GPU: no GPU here")
def test_batches_arrive_on_the_gpu(loader_cfg):
    record = benchmark_data_loading(dict(loader_cfg, pin_memory=True), device="cuda", batches=2, warmup=1)
    assert record["pin_memory"] and record["peak_memory_bytes"] > 0
