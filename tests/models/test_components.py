"""Every registered network component builds at a tiny size and runs forward and backward.

The test is driven by the registry: a newly registered encoder, motion basis, synthesis network, warper,
discriminator, loss set or model fails here until it gets an entry in ``TINY``; each component is
checked against its contract (lmtk.models.interfaces).
"""

import math
import re

import pytest
import torch

from lmtk.models.interfaces import CONTRACTS, check_interface, contract_members
from lmtk.models.motion_bases import DirectPath, GramSchmidtBasis
from lmtk.registry import build, list_components

SIZE = 32
LATENT = 32
CHANNELS = dict(channel_base=256, max_channels=32)
NETWORK = dict(size=SIZE, latent_dim=LATENT, **CHANNELS)

KINDS = ("encoders", "motion_bases", "synthesis_networks", "warpers", "discriminators", "loss_sets", "models")

TINY = {
    "lmtk.LIAEncoder.v1": NETWORK,
    "lmtk.TimmEncoder.v1": dict(backbone="resnet18", pretrained=False, **NETWORK),
    "lmtk.GramSchmidtBasis.v1": dict(latent_dim=LATENT, num_directions=4),
    "lmtk.DirectPath.v1": dict(latent_dim=LATENT),
    "lmtk.FlowGenerator.v1": dict(warper=dict(type="lmtk.FlowWarper.v1", align_corners=True), **NETWORK),
    "lmtk.LIAXGenerator.v1": dict(norm_groups=8, num_flow_blocks=2, num_refine_blocks=2, **NETWORK),
    "lmtk.FlowWarper.v1": dict(align_corners=False),
    "lmtk.StyleGAN2Discriminator.v1": dict(size=SIZE, **CHANNELS),
    "lmtk.LIALoss.v1": dict(perceptual_weight=0.0, r1_weight=1.0),
    "lmtk.LIA.v2": dict(
        encoder=dict(type="lmtk.LIAEncoder.v1", **NETWORK),
        synthesis=dict(type="lmtk.FlowGenerator.v1", **NETWORK),
        motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=LATENT, num_directions=4),
        motion_mlp_layers=2,
    ),
    "lmtk.LIAX.v2": dict(
        encoder=dict(type="lmtk.LIAEncoder.v1", widen_first=True, **NETWORK),
        synthesis=dict(
            type="lmtk.LIAXGenerator.v1", norm_groups=8, num_flow_blocks=2, num_refine_blocks=2, **NETWORK
        ),
        motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=LATENT, num_directions=4),
        direction_names=dict(yaw=1),
    ),
    # the example plugin, when it is installed in the environment
    "lmtk_householder.HouseholderBasis.v1": dict(latent_dim=LATENT, num_directions=4),
}

# v1 of a model names its synthesis network `generator` (v2: `synthesis`)
for _name in ("lmtk.LIA", "lmtk.LIAX"):
    _v2 = dict(TINY[f"{_name}.v2"])
    TINY[f"{_name}.v1"] = {"generator": _v2.pop("synthesis"), **_v2}

# parameters that legitimately receive no gradient in these forward passes
UNUSED = ("noise_strength",)  # StyledConv's noise scale: LIA injects no noise


def _registered() -> dict[str, str]:
    return {name: kind for kind in KINDS for name in list_components(kind)[kind]}


REGISTERED = _registered()


def _images(batch: int = 2) -> torch.Tensor:
    images = torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(batch)) * 2 - 1
    return images.requires_grad_(True)


def _features(channels: dict[int, int], batch: int = 2) -> list[torch.Tensor]:
    return [torch.randn(batch, c, r, r, requires_grad=True) for r, c in channels.items()]


# each runner checks output shapes and returns (outputs, inputs that must receive a gradient)
def _run_encoder(encoder):
    images = _images()
    code, features = encoder(images)
    assert code.shape == (2, encoder.latent_dim)
    assert [tuple(f.shape) for f in features] == [(2, c, r, r) for r, c in encoder.feature_channels.items()]
    assert list(encoder.feature_channels) == [2**i for i in range(3, int(math.log2(SIZE)) + 1)]
    code_only, none = encoder(_images(), with_features=False)
    assert none is None and torch.allclose(code_only, code, atol=1e-5)
    return [code, *features], [images]


def _run_motion_basis(basis):
    magnitudes = torch.randn(3, basis.num_magnitudes, requires_grad=True)
    path = basis(magnitudes)
    assert path.shape == (3, basis.latent_dim)
    directions = basis.directions()
    if directions is not None:
        assert directions.shape == (basis.latent_dim, basis.num_magnitudes)
    return [path], [magnitudes]


def _run_synthesis_network(synthesis):
    latent = torch.randn(2, synthesis.latent_dim, requires_grad=True)
    features = _features(synthesis.feature_channels)
    image, levels = synthesis(latent, features, return_levels=True)
    assert image.shape == (2, 3, synthesis.size, synthesis.size)
    assert len(levels) == len(synthesis.feature_channels)
    return [image], [latent, *features]


def _run_warper(warper):
    features = torch.randn(2, 4, 8, 8, requires_grad=True)
    flow = (0.3 * torch.randn(2, 2, 8, 8)).requires_grad_(True)
    mask = torch.rand(2, 1, 8, 8, requires_grad=True)
    out = warper(features, flow, mask)
    assert out.shape == features.shape
    return [out], [features, flow, mask]


def _run_discriminator(discriminator):
    images = _images(4)
    logits = discriminator(images)
    assert logits.shape == (4, 1)
    return [logits], [images]


def _run_loss_set(loss_set):
    fake, real = _images(2), _images(3)[:2].detach().requires_grad_(True)
    fake_logits = torch.randn(2, 1, requires_grad=True)
    real_logits = (real.mean(dim=(1, 2, 3)) * torch.ones(2)).unsqueeze(1)
    losses = {
        **loss_set.generator_losses(fake, real.detach(), fake_logits),
        **loss_set.discriminator_losses(real_logits, fake_logits),
        **loss_set.r1_loss(real_logits, real),
    }
    assert losses and all(key.startswith("loss") and value.dim() == 0 for key, value in losses.items())
    assert isinstance(loss_set.is_r1_step(0), bool)
    return list(losses.values()), [fake, fake_logits]


def _run_model(model):
    source, driving = _images(1), _images(2)
    out = model.transfer(source, driving)
    assert out.shape == (2, 3, model.size, model.size)
    return [out], [source, driving]


RUNNERS = {
    "encoders": _run_encoder,
    "motion_bases": _run_motion_basis,
    "synthesis_networks": _run_synthesis_network,
    "warpers": _run_warper,
    "discriminators": _run_discriminator,
    "loss_sets": _run_loss_set,
    "models": _run_model,
}


def test_every_registered_component_has_a_tiny_config():
    missing = sorted(set(REGISTERED) - set(TINY))
    assert not missing, f"add a tiny config to TINY in {__file__} for: {missing}"


def test_tiny_configs_name_registered_components():
    stale = sorted(name for name in TINY if name.startswith("lmtk.") and name not in REGISTERED)
    assert not stale, f"TINY names components that are no longer registered: {stale}"


def test_names_are_versioned():
    for name in REGISTERED:
        parts = name.split(".")
        assert len(parts) >= 3 and parts[-1][0] == "v" and parts[-1][1:].isdigit(), name


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_builds_and_runs_forward_backward(name):
    if name not in TINY:
        pytest.fail(f"{name} has no tiny config in TINY")
    kind = REGISTERED[name]
    torch.manual_seed(0)
    module = build(dict(type=name, **TINY[name]), kind)
    assert isinstance(module, torch.nn.Module)
    outputs, inputs = RUNNERS[kind](module)
    for out in outputs:
        assert torch.isfinite(out).all(), name
    sum((out * torch.randn_like(out)).sum() for out in outputs).backward()
    for i, tensor in enumerate(inputs):
        assert tensor.grad is not None, f"{name}: no gradient for input {i}"
        assert torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0, f"{name}: input {i}"
    for param_name, param in module.named_parameters():
        if param_name.rsplit(".", 1)[-1] in UNUSED:
            continue
        assert param.grad is not None, f"{name}: no gradient for {param_name}"
        assert torch.isfinite(param.grad).all(), f"{name}: non-finite gradient for {param_name}"


@pytest.mark.parametrize("name", sorted(n for n, kind in REGISTERED.items() if kind in CONTRACTS))
def test_satisfies_the_contract_of_its_kind(name):
    kind = REGISTERED[name]
    module = build(dict(type=name, **TINY[name]), kind)
    check_interface(module, CONTRACTS[kind])
    for member in contract_members(CONTRACTS[kind]):
        assert hasattr(module, member), f"{name} has no {member}"


def test_every_component_kind_has_a_contract():
    assert set(KINDS) - {"models"} == set(CONTRACTS)


# ----------------------------------------------------------------------------- motion bases


def test_gram_schmidt_directions_are_orthonormal():
    torch.manual_seed(0)
    basis = GramSchmidtBasis(latent_dim=LATENT, num_directions=6)
    directions = basis.directions()
    assert directions.shape == (LATENT, 6)
    assert torch.allclose(directions.t() @ directions, torch.eye(6), atol=1e-5)
    # the columns span the same space as the free matrix (QR, not an arbitrary orthonormal basis)
    projection = directions @ directions.t()
    assert torch.allclose(projection @ basis.weight.detach(), basis.weight.detach(), atol=1e-4)


def test_gram_schmidt_stays_orthonormal_after_an_update():
    torch.manual_seed(0)
    basis = GramSchmidtBasis(latent_dim=LATENT, num_directions=4)
    optimizer = torch.optim.SGD(basis.parameters(), lr=1.0)
    basis(torch.randn(5, 4)).pow(2).sum().backward()
    optimizer.step()
    directions = basis.directions()
    assert torch.allclose(directions.t() @ directions, torch.eye(4), atol=1e-5)


def test_gram_schmidt_keeps_directions_without_gradients_until_the_weight_changes():
    torch.manual_seed(0)
    basis = GramSchmidtBasis(latent_dim=LATENT, num_directions=4)
    qr_calls = []
    orthonormalise = basis._orthonormalise
    basis._orthonormalise = lambda: qr_calls.append(1) or orthonormalise()
    with torch.inference_mode():
        first = basis.directions()
        assert torch.equal(basis.directions(), first) and len(qr_calls) == 1  # no QR per batch in inference
    with torch.no_grad():
        handed_out = basis.directions()
        assert torch.equal(handed_out, first) and len(qr_calls) == 1
        handed_out.zero_()  # a copy: editing it leaves the model's directions alone
        assert torch.equal(basis.directions(), first)
        basis.weight.add_(0.1)  # an optimizer step or a load_state_dict changes the weight in place
        changed = basis.directions()
    assert len(qr_calls) == 2 and not torch.allclose(changed, first)
    with torch.no_grad():
        expected, _ = torch.linalg.qr(basis.weight + 1e-8)
    torch.testing.assert_close(changed, expected)
    directions = basis.directions()  # with gradients: computed afresh, and they flow to the weight
    assert directions is not changed and directions.requires_grad
    directions.sum().backward()
    assert basis.weight.grad is not None
    basis.load_state_dict(GramSchmidtBasis(latent_dim=LATENT, num_directions=4).state_dict())
    with torch.no_grad():
        assert not torch.allclose(basis.directions(), changed)
    assert set(basis.state_dict()) == {"weight"}


def test_gram_schmidt_path_is_magnitudes_times_directions():
    torch.manual_seed(0)
    basis = GramSchmidtBasis(latent_dim=LATENT, num_directions=5)
    magnitudes = torch.randn(3, 5)
    assert torch.allclose(basis(magnitudes), magnitudes @ basis.directions().t(), atol=1e-6)
    # moving along one direction by a changes the path by a * d_i
    step = torch.zeros(1, 5)
    step[0, 2] = 1.5
    assert torch.allclose(basis(step)[0], 1.5 * basis.directions()[:, 2], atol=1e-6)


@pytest.mark.parametrize("num_directions", [0, -1, LATENT + 1])
def test_gram_schmidt_rejects_invalid_num_directions(num_directions):
    with pytest.raises(ValueError, match="num_directions"):
        GramSchmidtBasis(latent_dim=LATENT, num_directions=num_directions)


def test_gram_schmidt_rejects_wrong_magnitude_shape():
    basis = GramSchmidtBasis(latent_dim=LATENT, num_directions=4)
    with pytest.raises(ValueError, match="magnitudes"):
        basis(torch.randn(2, 5))


def test_direct_path_is_identity_without_directions():
    path = DirectPath(latent_dim=LATENT)
    assert path.num_magnitudes == LATENT
    assert path.directions() is None
    magnitudes = torch.randn(3, LATENT)
    assert torch.equal(path(magnitudes), magnitudes)
    with pytest.raises(
        ValueError, match=re.escape(f"magnitudes must be (B, {LATENT}), got (3, {LATENT + 1})")
    ):
        path(torch.randn(3, LATENT + 1))


def test_discriminator_gradients_stay_finite_under_float16():
    """In float16 the minibatch stddev's 1e-8 rounds to 0 and an underflowed variance gave sqrt an
    infinite gradient, which made every gradient through the discriminator NaN."""
    torch.manual_seed(0)
    discriminator = build(dict(type="lmtk.StyleGAN2Discriminator.v1", size=SIZE, **CHANNELS))
    discriminator.requires_grad_(False)
    image = (torch.rand(2, 3, SIZE, SIZE) * 2 - 1).requires_grad_()
    with torch.autocast("cpu", dtype=torch.float16):
        logits = discriminator(image)
    assert logits.dtype == torch.float16
    logits.sum().backward()
    assert torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0
