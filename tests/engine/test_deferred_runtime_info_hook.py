"""DeferredRuntimeInfoHook: the message hub gets the plain hook's values, one device copy per interval."""

import pytest
import torch
from mmengine.config import Config
from training_helpers import REPO, tiny_options

from lmtk.engine import LMTKRunner
from lmtk.engine.hooks import DeferredRuntimeInfoHook


def run(video_root, work_dir, runtime_info: str, monkeypatch=None):
    cfg = Config.fromfile(str(REPO / "configs/lia/lia_vox_m20.py"))
    cfg.merge_from_dict(tiny_options(video_root, work_dir, max_iters=5))
    cfg.train_dataloader.dataset.repeats = 10  # no end of an epoch (a flush) within the 5 iterations
    cfg.default_hooks.logger.interval = 3  # flushes after iterations 3 and 5 (the last)
    cfg.default_hooks.checkpoint.interval = 2  # saves after 2 and 4, between flushes
    cfg.default_hooks.runtime_info = dict(type=runtime_info)
    cfg.experiment_name = runtime_info
    runner = LMTKRunner.from_cfg(cfg)
    received = []
    update_scalar = runner.message_hub.update_scalar

    def recording(key, value, *args, **kwargs):
        received.append((key, value))
        return update_scalar(key, value, *args, **kwargs)

    runner.message_hub.update_scalar = recording
    runner.train()
    history = {
        key: buffer.data[0].tolist()
        for key, buffer in runner.message_hub.log_scalars.items()
        if key.startswith("train/") and not key.startswith("train/time") and key != "train/data_time"
    }
    return runner, history, received


def test_same_values_as_the_plain_hook_and_checkpoints_hold_them(video_root, tmp_path):
    _, plain, _ = run(video_root, tmp_path / "plain", "RuntimeInfoHook")
    runner, deferred, received = run(video_root, tmp_path / "deferred", "DeferredRuntimeInfoHook")
    (hook,) = [h for h in runner.hooks if isinstance(h, DeferredRuntimeInfoHook)]
    assert hook.interval is None and hook._flush_interval == 3  # follows the logger, setting kept
    assert deferred.keys() == plain.keys() and "train/loss" in deferred
    for key in plain:
        assert deferred[key] == pytest.approx(plain[key], rel=1e-6), key
    assert not any(torch.is_tensor(value) for _, value in received)  # numbers only: copied in bulk
    # each checkpoint holds the message hub with every value logged so far, though none was flushed yet
    for iteration in (2, 4):
        path = tmp_path / "deferred" / f"iter_{iteration}.pth"
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        assert len(checkpoint["message_hub"]["log_scalars"]["train/loss"].data[0]) == iteration


def test_flushes_once_per_interval_and_detaches(monkeypatch):
    hook = DeferredRuntimeInfoHook(interval=2)
    flushed = []

    class Hub:
        def update_scalar(self, key, value):
            flushed.append((key, value))

    class Runner:
        message_hub = Hub()
        train_dataloader = []
        max_iters = 10
        iter = 0

    weight = torch.ones((), requires_grad=True)
    runner = Runner()
    for step in range(3):
        runner.iter = step
        hook.after_train_iter(runner, step, outputs={"loss": weight * (step + 1), "count": step})
        assert not any(v.requires_grad for out in hook._pending for v in out.values() if torch.is_tensor(v))
    assert flushed == [("train/loss", 1.0), ("train/count", 0), ("train/loss", 2.0), ("train/count", 1)]
    with pytest.raises(ValueError, match="must be a scalar"):
        hook.after_train_iter(runner, 3, outputs={"loss": torch.ones(2)})
    with pytest.raises(ValueError, match="positive"):
        DeferredRuntimeInfoHook(interval=0)
