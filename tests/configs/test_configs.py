"""Every config in configs/ parses and builds its model (shrunk to a tiny size)."""

from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from lmtk.registry import build

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p for p in (REPO / "configs").rglob("*.py") if "_base_" not in p.parts)
TINY = {
    "model.size": 32,
    "model.latent_dim": 32,
    "model.channel_base": 256,
    "model.max_channels": 32,
    "model.loss.perceptual.pretrained": False,
    "model.loss.perceptual.scales": (1, 0.5),  # a 32 px image has no 8 px level VGG19 could take
}


def test_every_training_config_is_found():
    names = {p.name for p in CONFIGS}
    expected = {f"lia_vox_m{m}.py" for m in (5, 10, 20, 40, 100)} | {
        "lia_vox_no_dm.py",
        "lia_taichi_m20.py",
        "lia_ted_m20.py",
        "lia_vox_m20_timm.py",
        "lia_synthetic_m20.py",
    }
    assert expected <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_its_model(path):
    cfg = Config.fromfile(str(path))
    assert cfg.train_dataloader.dataset.type.startswith("lmtk.")
    assert cfg.optim_wrapper.constructor == "LIAOptimWrapperConstructor"
    cfg.merge_from_dict(TINY)
    if cfg.model.motion_basis.get("num_directions", 0) > 32:
        cfg.merge_from_dict({"model.motion_basis.num_directions": 32})  # at most latent_dim
    model = build(cfg.model.to_dict(), "models")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.isfinite(model.transfer(x, x)).all()
        assert model.discriminator(x).shape == (2, 1)
    directions = model.directions()
    if cfg.model.motion_basis.type == "lmtk.DirectPath.v1":
        assert directions is None
    else:
        assert directions.shape == (32, min(cfg.model.motion_basis.num_directions, 32))


def test_paper_setting_is_the_published_one():
    cfg = Config.fromfile(str(REPO / "configs/lia/lia_vox_m20.py"))
    assert (cfg.model.size, cfg.model.latent_dim, cfg.model.motion_basis.num_directions) == (256, 512, 20)
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.model.loss.perceptual_weight == 10.0
    generator = cfg.optim_wrapper.generator
    assert generator.optimizer.lr == 0.002 and tuple(generator.optimizer.betas) == (0.0, 0.99)
    assert (generator.reg_interval, cfg.optim_wrapper.discriminator.reg_interval) == (4, 16)
