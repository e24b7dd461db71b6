"""The synthetic faces on disk as a training dataset, rendered first when missing."""

from __future__ import annotations

import os
import warnings
from typing import Any

from mmengine.dist import barrier, get_rank

from ...registry import datasets
from ..video_pair import VideoPairDataset
from .writer import make_synthetic_dataset, synthetic_dataset_ready

__all__ = ["synthetic_video_pairs"]


@datasets.register("lmtk.SyntheticVideoPairs.v1")
def synthetic_video_pairs(
    data_root: str | os.PathLike,
    split: str = "train",
    size: int = 64,
    generate: dict[str, Any] | None = None,
    **pair_options: Any,
) -> VideoPairDataset:
    """A :class:`VideoPairDataset` over synthetic clips in ``data_root``, written there first if needed.

    Args:
        data_root: dataset folder; reused when its manifest matches every option in ``generate``,
            rendered again otherwise.
        split: ``"train"`` or ``"test"``.
        size: frame size given to the model.
        generate: arguments of :func:`make_synthetic_dataset` (``num_train``, ``num_test``,
            ``num_frames``, ``size``, ``seed``, ``layout`` ...).
        **pair_options: passed to :class:`VideoPairDataset` (``repeats``, ``pipeline`` ...).
    """
    generate = dict(generate or {})
    generate.setdefault("size", size)
    if generate["size"] < size:
        warnings.warn(
            f"the synthetic clips are rendered at {generate['size']} px and read at {size} px, so the model "
            f"trains on upscaled frames; to render them at {size} px set generate.size={size} (and a "
            f"data_root of their own)",
            stacklevel=2,
        )
    if not synthetic_dataset_ready(data_root, **generate):
        if get_rank() == 0:  # one process renders; the others wait for it
            make_synthetic_dataset(data_root, **generate)
        barrier()
    return VideoPairDataset(data_root, split=split, size=size, **pair_options)
