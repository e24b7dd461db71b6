"""Write source / driving / reconstruction / reference grids during training."""

from __future__ import annotations

import os
import os.path as osp

import numpy as np
import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from PIL import Image
from torchvision.utils import make_grid

from ...datasets.resumable_sampler import Draw, ResumableInfiniteSampler

__all__ = ["SampleGridHook"]


@HOOKS.register_module()
class SampleGridHook(Hook):
    """Every ``interval`` iterations, save a grid for ``num_samples`` fixed pairs.

    Rows are samples; columns are source, driving, reconstruction (absolute transfer) and the
    reference image x_r. PNGs go to ``<work_dir>/samples/iter_<n>.png``; the grid also goes to the
    runner's visualizer, so TensorBoard shows it when a TensorBoard backend is configured.

    The pairs are drawn once, spread over the dataset with fixed seeds, when the training data comes
    from a ``ResumableInfiniteSampler``: a resumed run shows the same pairs. With another sampler they
    are the first pairs of the first batch the run sees.

    Args:
        interval: iterations between grids.
        num_samples: rows in the grid.
    """

    priority = "LOW"

    def __init__(self, interval: int = 1000, num_samples: int = 4) -> None:
        self.interval = interval
        self.num_samples = num_samples
        self._batch: dict | None = None

    def before_train(self, runner) -> None:
        dataloader = runner.train_dataloader
        if isinstance(getattr(dataloader, "sampler", None), ResumableInfiniteSampler):
            dataset = dataloader.dataset
            count = min(self.num_samples, len(dataset))
            items = [dataset[Draw(i * len(dataset) // count, seed=i)] for i in range(count)]
            self._batch = {k: torch.stack([item[k] for item in items]) for k in ("source", "driving")}

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._batch is None and data_batch is not None:
            self._batch = {
                k: v[: self.num_samples].clone() for k, v in data_batch.items() if k in ("source", "driving")
            }
        if self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner):
            self._write(runner)

    @master_only
    @torch.no_grad()
    def _write(self, runner) -> None:
        if self._batch is None:
            return
        model = getattr(runner.model, "module", runner.model)
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        source = self._batch["source"].to(device)
        driving = self._batch["driving"].to(device)
        columns = [source, driving, model.transfer(source, driving, mode="absolute"), model.reference(source)]
        model.train(was_training)
        tiles = torch.stack(columns, dim=1).flatten(0, 1).float().clamp(-1, 1)
        grid = make_grid(tiles, nrow=len(columns), normalize=True, value_range=(-1, 1), padding=2)
        image = (grid.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        path = osp.join(runner.work_dir, "samples", f"iter_{runner.iter + 1:07d}.png")
        runner.visualizer.add_image("samples", image, step=runner.iter + 1)
        os.makedirs(osp.dirname(path), exist_ok=True)
        Image.fromarray(image).save(path)
