"""Every config in configs/ parses and builds its model (shrunk to a tiny size)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from PIL import Image

import lmtk.datasets  # noqa: F401 - registers the paired transforms
from lmtk.datasets.transforms import frame_to_tensor
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


# configs of a published model whose training recipe is not public: they build the model to load into
INFERENCE_ONLY = {"liax_512"}


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
    if path.stem in INFERENCE_ONLY:
        assert "train_dataloader" not in cfg
    else:
        assert cfg.train_dataloader.dataset.type.startswith("lmtk.")
        assert cfg.optim_wrapper.constructor == "LIAOptimWrapperConstructor"
    cfg.merge_from_dict(TINY)
    if cfg.model.motion_basis.get("num_directions", 0) > 32:
        cfg.merge_from_dict({"model.motion_basis.num_directions": 32})  # at most latent_dim
    if cfg.model.synthesis.type == "lmtk.LIAXGenerator.v1":
        cfg.merge_from_dict({"model.synthesis.norm_groups": 8})  # its 32 groups: more than tiny channels
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


PAPER_CONFIGS = [f"lia_vox_m{m}" for m in (5, 10, 20, 40, 100)] + [
    "lia_vox_no_dm",
    "lia_taichi_m20",
    "lia_ted_m20",
]


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_configs_train_the_published_data_recipe(name):
    # docs/training.md: one item per video, a total batch of 32 over all processes, the published augmentation
    loader = Config.fromfile(str(REPO / "configs" / "lia" / f"{name}.py")).train_dataloader
    assert (loader.batch_size, loader.batch_size_scope) == (32, "total")
    assert loader.dataset.group_by_identity is False
    kinds = [step["type"] for step in loader.dataset.pipeline]
    expected = {
        "lia_taichi_m20": ["PairedResize", "PairedRandomCrop", "PairedRandomFlip", "PairedColorJitter"],
        "lia_ted_m20": ["PairedRandomFlip", "PairedColorJitter"],
    }
    assert kinds == expected.get(name, [])
    for step in loader.dataset.pipeline:
        if step["type"] == "PairedColorJitter":
            assert step["mode"] == "last_only"
            assert [step[k] for k in ("brightness", "contrast", "saturation", "hue")] == [0.1] * 4


def _frame_folder(root: Path, name: str, size: tuple[int, int], num_frames: int = 4) -> list[np.ndarray]:
    """A lossless clip (PNG files) of grey noise frames, which hue and saturation leave as they are."""
    folder = root / "train" / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(name))
    frames = [
        np.repeat(rng.integers(0, 256, (*size, 1), dtype=np.uint8), 3, axis=2) for _ in range(num_frames)
    ]
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{index:03d}.png")
    return frames


def _paper_dataset(name: str, data_root: Path):
    dataset_cfg = Config.fromfile(str(REPO / "configs" / "lia" / name)).train_dataloader.dataset.to_dict()
    return build(dict(dataset_cfg, data_root=str(data_root)), "datasets")


def test_paper_vox_dataset_returns_the_frames_unflipped_and_unjittered(tmp_path):
    frames = _frame_folder(tmp_path, "id001#clip#001", (256, 256))
    dataset = _paper_dataset("lia_vox_m20.py", tmp_path)
    for seed in range(12):  # a flip (p = 0.5) or a jitter would show in one of them
        np.random.seed(seed)
        item = dataset[0]
        source, driving = item["frame_indices"]
        assert torch.equal(item["source"], frame_to_tensor(frames[source]))
        assert torch.equal(item["driving"], frame_to_tensor(frames[driving]))


def test_paper_taichi_pipeline_crops_224_and_the_dataset_resizes_back_to_256(tmp_path):
    frames = _frame_folder(tmp_path, "clip", (256, 256))
    pipeline = Compose(Config.fromfile(str(REPO / "configs/lia/lia_taichi_m20.py")).train_pipeline)
    windows = set()
    for seed in range(8):
        np.random.seed(seed)
        out = pipeline(dict(source=frames[0], driving=frames[1]))
        top, left, height, width = out["crop"]
        assert (height, width) == (224, 224) and out["source"].shape == out["driving"].shape == (224, 224, 3)
        windows.add((top, left))
        for key, frame in (("source", frames[0]), ("driving", frames[1])):
            window = frame[top : top + 224, left : left + 224].astype(np.float32)
            window = window[:, ::-1] if out["flip"] else window
            assert len(out["color_jitter"]["applied"]) == 1  # the published jitter: one adjustment
            # on grey noise the jitter is an affine change of the grey levels: the window stays correlated
            assert np.corrcoef(out[key].ravel(), window.ravel())[0, 1] > 0.98, (seed, key)
    assert len(windows) > 1
    item = _paper_dataset("lia_taichi_m20.py", tmp_path)[0]
    assert item["source"].shape == item["driving"].shape == (3, 256, 256)
