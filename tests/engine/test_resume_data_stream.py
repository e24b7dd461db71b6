"""A resumed run starts the data stream at its iteration: exact, and without loading earlier batches."""

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image
from training_helpers import REPO, Interrupted, tiny_options

from lmtk.datasets import ResumableInfiniteSampler, VideoPairDataset
from lmtk.engine import LMTKRunner


def runner_for(video_root, work_dir, name, workers=0, resume=False, stop_at=None):
    cfg = Config.fromfile(str(REPO / "configs/lia/lia_vox_m20.py"))
    cfg.merge_from_dict(tiny_options(video_root, work_dir, max_iters=6))
    cfg.train_dataloader.num_workers = workers
    cfg.train_dataloader.persistent_workers = workers > 0
    if stop_at:
        cfg.custom_hooks = [*cfg.custom_hooks, dict(type="InterruptAtIter", at=stop_at)]
    cfg.experiment_name, cfg.resume = name, resume
    return LMTKRunner.from_cfg(cfg)


def weights(runner) -> dict:
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


def test_resume_loads_no_batch_before_the_resumed_iteration(video_root, tmp_path, monkeypatch):
    stopped = runner_for(video_root, tmp_path, "first", stop_at=5)  # checkpoint at 4, crash in 5
    assert isinstance(stopped.train_dataloader.sampler, ResumableInfiniteSampler)
    with pytest.raises(Interrupted):
        stopped.train()
    loaded = []
    item = VideoPairDataset._item
    monkeypatch.setattr(
        VideoPairDataset, "_item", lambda self, index: loaded.append(index) or item(self, index)
    )
    resumed = runner_for(video_root, tmp_path, "second", resume=True)
    resumed.train()
    assert resumed.iter == 6
    grid_rows = 4  # SampleGridHook's fixed pairs
    assert len(loaded) == grid_rows + 2 * 2  # iterations 5 and 6 at batch 2, nothing of 1-4


def test_resumed_run_with_workers_matches_an_uninterrupted_one(video_root, tmp_path):
    straight = runner_for(video_root, tmp_path / "straight", "straight", workers=2)
    straight.train()
    # the workers end with training (left to the garbage collector, each join waited out a 5 s timeout)
    workers = straight.train_loop.dataloader_iterator._iterator._workers
    assert len(workers) == 2 and not any(worker.is_alive() for worker in workers)
    with pytest.raises(Interrupted):
        runner_for(video_root, tmp_path / "resumed", "stopped", workers=2, stop_at=5).train()
    resumed = runner_for(video_root, tmp_path / "resumed", "resumed", workers=2, resume=True)
    resumed.train()
    expected, actual = weights(straight), weights(resumed)
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key
    # the sample grids show the same pairs before and after the resume: their source and driving
    # columns (two 32 px tiles and their padding) are equal; the reconstructions moved on
    first, later = (
        np.asarray(Image.open(tmp_path / "resumed" / "samples" / f"iter_{i:07d}.png")) for i in (4, 6)
    )
    inputs = slice(0, 2 + 2 * (32 + 2))
    assert np.array_equal(first[:, inputs], later[:, inputs])
    assert not np.array_equal(first, later)
