"""Helpers for training tests: small generated videos and overrides for a tiny LIA run."""

from pathlib import Path

import av
import numpy as np
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

REPO = Path(__file__).resolve().parents[2]


def write_video(path: Path, num_frames: int, size: int, seed: int) -> None:
    """A square moving over a textured background: frames of one clip differ only by motion."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    colour = rng.integers(0, 255, 3, dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"}
        for t in range(num_frames):
            frame = background.copy()
            x = int((size // 2) * (1 + np.sin(t / 3 + seed)) / 2)
            y = int((size // 2) * (1 + np.cos(t / 4 + seed)) / 2)
            frame[y : y + size // 2, x : x + size // 2] = colour
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def tiny_options(data_root: Path, work_dir: Path, max_iters: int = 4) -> dict:
    """Overrides that shrink configs/lia/lia_vox_m20.py to a seconds-long CPU run."""
    return {
        "work_dir": str(work_dir),
        "model.size": 32,
        "model.latent_dim": 32,
        "model.channel_base": 256,
        "model.max_channels": 32,
        "model.motion_basis.num_directions": 5,
        "model.loss.perceptual.pretrained": False,
        "model.loss.perceptual.scales": (1, 0.5),
        "train_dataloader.dataset.data_root": str(data_root),
        "train_dataloader.dataset.size": 32,
        "train_dataloader.dataset.repeats": 2,
        "train_dataloader.batch_size": 2,
        "train_dataloader.num_workers": 0,
        "train_dataloader.persistent_workers": False,
        "train_dataloader.pin_memory": False,
        "train_cfg.max_iters": max_iters,
        "default_hooks.logger.interval": 1,
        "default_hooks.checkpoint.interval": 2,
        "custom_hooks.0.interval": 2,
        "env_cfg.cudnn_benchmark": False,
    }


class Interrupted(Exception):
    pass


@HOOKS.register_module(force=True)
class InterruptAtIter(Hook):
    """Simulates a crash (a pre-empted job) right after iteration ``at``'s checkpoint."""

    priority = "LOWEST"

    def __init__(self, at: int) -> None:
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            raise Interrupted
