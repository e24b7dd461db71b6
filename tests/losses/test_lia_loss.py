"""Tests for lmtk.losses.lia_loss: the registered LIA loss set."""

import copy
import inspect
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import lmtk.losses  # noqa: F401  (registers the loss sets)
from lmtk.losses import LIALoss, PerceptualPyramidLoss, VGG19Features
from lmtk.registry import build, loss_sets

# Small and quick: random VGG features, two pyramid levels for 32 px images.
TINY = dict(pretrained=False, scales=(1.0, 0.5))


@pytest.fixture
def empty_hub(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    if not torch.hub.get_dir().startswith(str(tmp_path)):  # torch.hub.set_dir was called earlier
        monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return Path(torch.hub.get_dir())


@pytest.fixture(scope="module")
def loss_set() -> LIALoss:
    torch.manual_seed(0)
    return LIALoss(perceptual=TINY)


def _images(seed: int, batch: int = 1, size: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=generator) * 2 - 1


@pytest.fixture(scope="module")
def computed(loss_set):
    """One generator_losses call shared by the tests that only read its result."""
    fake, real, logits = _images(0, batch=2), _images(1, batch=2), torch.tensor([0.3, -1.2])
    return fake, real, logits, loss_set.generator_losses(fake, real, logits)


def test_registered():
    assert loss_sets.get("lmtk.LIALoss.v1") is LIALoss
    built = build(dict(type="lmtk.LIALoss.v1", perceptual=TINY, r1_weight=10.0))
    assert isinstance(built, LIALoss) and built.r1_weight == 10.0


def test_paper_defaults():
    defaults = {k: p.default for k, p in inspect.signature(LIALoss).parameters.items()}
    assert defaults["l1_weight"] == 1.0
    assert defaults["perceptual_weight"] == 10.0
    assert defaults["adversarial_weight"] == 1.0
    assert defaults["r1_weight"] == 0.0


def test_total_is_l1_plus_ten_perceptual_plus_adv(loss_set, computed):
    fake, real, logits, losses = computed
    assert set(losses) == {"loss_l1", "loss_perceptual", "loss_adv"}
    l1 = (fake - real).abs().mean()
    perceptual = loss_set.perceptual(fake, real)
    adv = F.softplus(-logits).mean()
    assert perceptual > 0
    assert torch.allclose(losses["loss_perceptual"], 10 * perceptual, rtol=1e-6)
    assert torch.allclose(sum(losses.values()), l1 + 10 * perceptual + adv, rtol=1e-5)


def test_default_equals_published_weighting(loss_set, computed):
    # The published code: layer weights 10 and no factor on the perceptual term.
    fake, real, logits, losses = computed
    published = LIALoss(
        perceptual_weight=1.0,
        perceptual=PerceptualPyramidLoss(
            scales=(1.0, 0.5), layer_weights=(10.0,) * 5, network=loss_set.perceptual.network
        ),
    )
    theirs = sum(published.generator_losses(fake, real, logits).values())
    assert torch.allclose(sum(losses.values()), theirs, rtol=1e-5)


def test_mmengine_parse_losses_sums_all_terms(computed):
    from mmengine.model import BaseModel

    class _Model(BaseModel):
        def forward(self, *args, **kwargs):
            return None

    losses = computed[-1]
    assert all("loss" in key for key in losses)
    total, log_vars = _Model().parse_losses(losses)
    assert torch.allclose(total, sum(losses.values()))
    assert set(losses) <= set(log_vars)


def test_gradient_reaches_fake_only(loss_set):
    fake = _images(0).requires_grad_(True)
    real = _images(1).requires_grad_(True)
    sum(loss_set.generator_losses(fake, real, torch.zeros(1, 1)).values()).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert real.grad is None


def test_zero_weights_skip_terms(empty_hub):
    # perceptual_weight=0 builds no VGG, so the missing pretrained weights do not matter.
    losses = LIALoss(perceptual_weight=0.0)
    assert losses.perceptual is None
    assert set(losses.generator_losses(_images(0), _images(1), torch.zeros(1))) == {"loss_l1", "loss_adv"}
    no_adv = LIALoss(perceptual_weight=0.0, adversarial_weight=0.0)
    assert set(no_adv.generator_losses(_images(0), _images(1))) == {"loss_l1"}
    with pytest.raises(ValueError, match="fake_logits"):
        losses.generator_losses(_images(0), _images(1))
    # nothing to learn from failed in the first step with "'int' object has no attribute 'backward'"
    with pytest.raises(ValueError, match="are all 0, so the generator has nothing to learn from"):
        LIALoss(l1_weight=0.0, perceptual_weight=0.0, adversarial_weight=0.0)


def test_default_needs_pretrained_weights(empty_hub):
    with pytest.raises(FileNotFoundError, match="pretrained=False"):
        LIALoss()


def test_discriminator_losses(loss_set):
    losses = loss_set.discriminator_losses(torch.zeros(4), torch.zeros(4))
    assert set(losses) == {"loss_d_real", "loss_d_fake"}
    assert losses["loss_d_real"].item() == pytest.approx(math.log(2))
    assert losses["loss_d_fake"].item() == pytest.approx(math.log(2))
    better = loss_set.discriminator_losses(torch.full((4,), 2.0), torch.full((4,), -2.0))
    assert sum(better.values()) < sum(losses.values())


def test_lazy_r1():
    losses = LIALoss(perceptual_weight=0.0, r1_weight=10.0, r1_interval=4)
    assert [step for step in range(10) if losses.is_r1_step(step)] == [0, 4, 8]
    torch.manual_seed(0)
    w = torch.randn(3, 8, 8)
    real = torch.randn(2, 3, 8, 8, requires_grad=True)
    r1 = losses.r1_loss((real * w).flatten(1).sum(1), real)
    # weight r1_weight / 2 * r1_interval = 20 on |w|^2 (the R1 of a linear discriminator)
    assert r1["loss_r1"].item() == pytest.approx(20 * w.square().sum().item(), rel=1e-5)
    with pytest.raises(ValueError, match="requires_grad"):
        losses.r1_loss(torch.zeros(2), torch.zeros(2, 3, 8, 8))
    off = LIALoss(perceptual_weight=0.0)
    assert not any(off.is_r1_step(step) for step in range(20))
    assert off.r1_loss(torch.zeros(2), real) == {}


def test_vgg_is_frozen_and_not_checkpointed(loss_set):
    assert all(not p.requires_grad for p in loss_set.parameters())
    loss_set.train()
    assert not loss_set.perceptual.network.training
    assert loss_set.state_dict() == {}

    from mmengine.runner.checkpoint import get_state_dict

    assert len(get_state_dict(loss_set)) == 0
    # Strict loading of a checkpoint without VGG weights works and leaves the weights alone; VGG weights
    # in a checkpoint are ignored too.
    weight = loss_set.perceptual.network.layers[0].weight
    before = weight.clone()
    loss_set.load_state_dict({}, strict=True)
    loss_set.load_state_dict({"perceptual.network.layers.0.weight": torch.zeros_like(weight)}, strict=True)
    assert torch.equal(weight, before)


def test_vgg_not_checkpointed_inside_a_model(loss_set):
    model = torch.nn.Module()
    model.generator = torch.nn.Linear(2, 2)
    model.loss = loss_set
    assert set(model.state_dict()) == {"generator.weight", "generator.bias"}
    copied = copy.deepcopy(model)
    assert set(copied.state_dict()) == {"generator.weight", "generator.bias"}
    copied.load_state_dict(model.state_dict(), strict=True)


def test_moves_with_dtype():
    losses = LIALoss(perceptual=dict(TINY, layers=("relu1_1",), layer_weights=(1.0,))).to(torch.float64)
    fake, real = _images(0).double(), _images(1).double()
    out = losses.generator_losses(fake, real, torch.zeros(1, dtype=torch.float64))
    assert all(v.dtype == torch.float64 for v in out.values())


def test_finite_under_bf16_autocast():
    # Three VGG layers, batch 1: bf16 convolutions are slow on CPUs without native bf16.
    torch.manual_seed(0)
    losses = LIALoss(
        perceptual=dict(TINY, layers=("relu1_1", "relu2_1", "relu3_1"), layer_weights=(1.0,) * 3)
    )
    fake = _images(0, batch=1).requires_grad_(True)
    real = _images(1, batch=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = losses.generator_losses(fake * 1.0, real, torch.zeros(1, dtype=torch.bfloat16))
        d_out = losses.discriminator_losses(torch.zeros(1, dtype=torch.bfloat16), torch.ones(1))
    for value in [*out.values(), *d_out.values()]:
        assert torch.isfinite(value) and value.dtype == torch.float32
    sum(out.values()).backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0


def test_feature_dtype_pins_precision():
    torch.manual_seed(0)
    losses = LIALoss(
        perceptual=dict(TINY, layers=("relu1_1",), layer_weights=(1.0,), feature_dtype="float32")
    )
    fake, real = _images(0, batch=1), _images(1, batch=1)
    reference = losses.perceptual(fake, real)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pinned = losses.perceptual(fake, real)
    assert torch.equal(pinned, reference)


def test_rejects_bad_config():
    with pytest.raises(TypeError, match="accepted"):
        LIALoss(perceptual=dict(pretrained=False, weigths_path="typo"))
    with pytest.raises(ValueError, match="l1_weight"):
        LIALoss(l1_weight=-1.0, perceptual_weight=0.0)
    with pytest.raises(ValueError, match="r1_interval"):
        LIALoss(perceptual_weight=0.0, r1_interval=0)
    with pytest.raises(ValueError, match="one shape"):
        LIALoss(perceptual_weight=0.0).generator_losses(_images(0), _images(1, size=16), torch.zeros(1))


def test_accepts_a_module():
    network = VGG19Features(pretrained=False, layers=("relu1_1",))
    perceptual = PerceptualPyramidLoss(scales=(1.0,), layer_weights=(1.0,), network=network)
    assert LIALoss(perceptual=perceptual).perceptual is perceptual
