"""``"max_iters"`` in a schedule: resolved when the config is built."""

import pytest
from mmengine.config import Config
from training_helpers import REPO

from lmtk.engine import resolve_max_iters


def test_max_iters_becomes_the_run_length_as_overridden():
    cfg = Config.fromfile(str(REPO / "configs/lia/lia_synthetic_m20.py"))
    cfg.merge_from_dict({"train_cfg.max_iters": 120})
    resolve_max_iters(cfg)
    (cosine,) = cfg.param_scheduler["generator"]
    assert (cosine["end"], cosine["T_max"], cosine["begin"]) == (120, 120, 0)
    assert cfg.param_scheduler["discriminator"] == []


def test_a_schedule_of_fixed_length_is_left_alone():
    cfg = Config(dict(train_cfg=dict(max_iters=10), param_scheduler=[dict(type="LinearLR", end=4)]))
    resolve_max_iters(cfg)
    assert cfg.param_scheduler == [dict(type="LinearLR", end=4)]


def test_max_iters_without_a_run_length_is_one_error():
    cfg = Config(dict(train_cfg=dict(type="EpochBasedTrainLoop"), param_scheduler=dict(end="max_iters")))
    with pytest.raises(ValueError, match='gives a length as "max_iters" but train_cfg has no max_iters'):
        resolve_max_iters(cfg)
