"""Tests for lmtk.models.lia: the inference API of LIA checked against manual compositions of its parts."""

import pytest
import torch

from lmtk.models import LIA, LIAGenerator
from lmtk.registry import build

SIZE = 32
LATENT = 32
NETWORK = dict(size=SIZE, latent_dim=LATENT, channel_base=256, max_channels=32)
# outputs are O(1); a different batch size changes the convolutions' accumulation order (~3e-5 seen),
# while a wrong composition of code and paths changes the image by O(0.1)
ATOL = 2e-4


def _config(**overrides) -> dict:
    cfg = dict(
        type="lmtk.LIA.v1",
        encoder=dict(type="lmtk.LIAEncoder.v1", **NETWORK),
        generator=dict(type="lmtk.FlowGenerator.v1", **NETWORK),
        motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=LATENT, num_directions=4),
        motion_mlp_layers=2,
    )
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="module")
def model() -> LIA:
    torch.manual_seed(0)
    return build(_config()).eval()


def _images(batch: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _path(net: LIAGenerator, images: torch.Tensor) -> torch.Tensor:
    """w_{r->x}: the full encoder's code, the motion MLP, then the basis."""
    code = net.encoder(images)[0]
    return net.motion_basis(net.motion_mlp(code))


@torch.no_grad()
def test_absolute_transfer_is_code_plus_path(model):
    net = model.net
    source, driving = _images(2, 1), _images(2, 2)
    code, features = net.encoder(source)
    expected = net.synthesis(code + _path(net, driving), features)
    out = model.transfer(source, driving, mode="absolute")
    assert out.shape == (2, 3, SIZE, SIZE)
    assert torch.allclose(out, expected, atol=ATOL)
    # the default mode is absolute, and the training forward is the same reconstruction
    assert torch.allclose(model.transfer(source, driving), out, atol=ATOL)
    assert torch.allclose(model(source, driving, mode="tensor"), out, atol=ATOL)


@torch.no_grad()
def test_relative_transfer_with_driving_equal_to_first(model):
    # w_{r->d} - w_{r->1} vanishes, so z = z_{s->r} + w_{r->s}: the source re-posed by its own motion
    net = model.net
    source, driving = _images(2, 3), _images(2, 4)
    code, features = net.encoder(source)
    expected = net.synthesis(code + net.motion_basis(net.motion_mlp(code)), features)
    out = model.transfer(source, driving, mode="relative", driving_first=driving)
    assert torch.allclose(out, expected, atol=ATOL)
    # and it is not simply the absolute transfer
    assert not torch.allclose(out, model.transfer(source, driving), atol=1e-3)


@torch.no_grad()
def test_relative_transfer_general(model):
    net = model.net
    source, driving, first = _images(1, 5), _images(3, 6), _images(1, 7)
    code, features = net.encoder(source)
    own = net.motion_basis(net.motion_mlp(code))
    latent = code + own + _path(net, driving) - _path(net, first)
    expected = net.synthesis(latent, [f.expand(3, -1, -1, -1) for f in features])
    out = model.transfer(source, driving, mode="relative", driving_first=first)
    assert out.shape == (3, 3, SIZE, SIZE)
    assert torch.allclose(out, expected, atol=ATOL)


def test_relative_transfer_needs_driving_first(model):
    with pytest.raises(ValueError, match="driving_first"):
        model.transfer(_images(1, 0), _images(1, 1), mode="relative")


def test_unknown_transfer_mode(model):
    with pytest.raises(ValueError, match="absolute"):
        model.transfer(_images(1, 0), _images(1, 1), mode="sideways")


@torch.no_grad()
def test_reference_decodes_the_source_code(model):
    net = model.net
    source = _images(2, 8)
    code, features = net.encoder(source)
    assert torch.allclose(model.reference(source), net.synthesis(code, features), atol=ATOL)


@torch.no_grad()
def test_source_batch_of_one_broadcasts_over_driving(model):
    source, driving = _images(1, 9), _images(3, 10)
    out = model.transfer(source, driving)
    assert out.shape == (3, 3, SIZE, SIZE)
    for i in range(3):
        assert torch.allclose(out[i : i + 1], model.transfer(source, driving[i : i + 1]), atol=ATOL)
    assert not torch.allclose(out[0], out[1], atol=1e-4)  # each frame gets its own motion


def test_mismatched_source_batch_raises(model):
    with pytest.raises(ValueError, match="source batch 2"):
        model.transfer(_images(2, 0), _images(3, 1))


def test_transfer_refuses_images_outside_the_range_as_the_animator_does(model):
    """0-255 values or NaN gave NaN or saturated images silently, where the Animator refused them."""
    from lmtk.apis import Animator

    source, driving = _images(1, 0), _images(2, 1)
    with pytest.raises(
        ValueError, match=r"driving has values in \[0\.\d+, 255\].*x / 127.5 - 1"
    ) as transfer_error:
        model.transfer(source, (driving + 1) * 127.5)
    with pytest.raises(ValueError) as animator_error:
        Animator(model).animate_frames(source, (driving + 1) * 127.5, mode="absolute")
    assert str(animator_error.value) == str(transfer_error.value)  # one check, one message
    broken = source.clone()
    broken[0, 1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="source has NaN or infinite values"):
        model.transfer(broken, driving)
    with pytest.raises(ValueError, match="driving_first has NaN or infinite values"):
        model.transfer(source, driving, mode="relative", driving_first=broken)
    with pytest.raises(ValueError, match="source has values in"):
        model.reference(source * 3)
    assert model.transfer(source, driving.clamp(-1, 1) * 1.05).shape == (2, 3, SIZE, SIZE)  # overshoot


def test_the_value_check_reads_no_values_off_the_cpu():
    # on a GPU, reading the values back would make every call wait for the device: such tensors pass
    # unchecked (a meta tensor has no values at all: reading them would fail)
    from lmtk.models.lia import check_image_values

    check_image_values("source", torch.empty(1, 3, SIZE, SIZE, device="meta"))
    with pytest.raises(ValueError, match="source has NaN"):
        check_image_values("source", torch.full((1, 3, SIZE, SIZE), float("nan")))


@pytest.mark.parametrize("which", ["source", "driving"])
def test_wrong_image_size_mentions_model_size(model, which):
    images = {"source": _images(1, 0), "driving": _images(1, 1)}
    images[which] = torch.zeros(1, 3, 2 * SIZE, 2 * SIZE)
    with pytest.raises(ValueError, match=rf"{which} is 64x64 but the model size is {SIZE}"):
        model.transfer(images["source"], images["driving"])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model.reference(torch.zeros(1, 1, SIZE, SIZE))


@torch.no_grad()
def test_generator_levels_are_valid_flows_and_masks(model):
    net = model.net
    code, features = net.encode(_images(2, 11))
    image, levels = net.decode(code, features, return_levels=True)
    assert image.shape == (2, 3, SIZE, SIZE)
    assert [level["flow"].shape[-1] for level in levels] == [8, 16, 32]
    for level in levels:
        resolution = level["flow"].shape[-1]
        assert level["flow"].shape == (2, 2, resolution, resolution)
        assert level["mask"].shape == (2, 1, resolution, resolution)
        assert level["flow"].abs().max() <= 1
        assert level["mask"].min() >= 0 and level["mask"].max() <= 1
    assert torch.allclose(image, net.decode(code, features), atol=ATOL)


def test_encode_code_matches_full_encoder(model):
    with torch.no_grad():
        images = _images(2, 12)
        assert torch.allclose(model.net.encode_code(images), model.net.encode(images)[0], atol=ATOL)


def test_directions_are_orthonormal(model):
    directions = model.directions()
    assert directions.shape == (LATENT, 4)
    assert torch.allclose(directions.t() @ directions, torch.eye(4), atol=1e-5)


def test_direct_path_ablation_has_no_directions():
    torch.manual_seed(0)
    model = build(_config(motion_basis=dict(type="lmtk.DirectPath.v1", latent_dim=LATENT)))
    assert model.directions() is None
    assert model.net.motion_mlp.layers[-1].weight.shape[0] == LATENT
    with torch.no_grad():
        assert model.transfer(_images(1, 0), _images(2, 1)).shape == (2, 3, SIZE, SIZE)


def test_channel_mismatch_between_encoder_and_generator():
    encoder = dict(type="lmtk.LIAEncoder.v1", **{**NETWORK, "max_channels": 16})
    with pytest.raises(ValueError, match="encoder features"):
        build(_config(encoder=encoder))


def test_size_mismatch_between_encoder_and_generator():
    encoder = dict(type="lmtk.LIAEncoder.v1", **{**NETWORK, "size": 64})
    with pytest.raises(ValueError, match="same size"):
        build(_config(encoder=encoder))


def test_latent_dim_mismatch():
    basis = dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=16, num_directions=4)
    with pytest.raises(ValueError, match="latent_dim"):
        build(_config(motion_basis=basis))


def test_inference_only_model_refuses_to_train(model):
    assert model.discriminator is None and model.loss is None
    with pytest.raises(RuntimeError, match="discriminator"):
        model(_images(1, 0), _images(1, 1), mode="loss")


def test_forward_modes(model):
    with torch.no_grad():
        predictions = model(_images(2, 0), _images(2, 1), mode="predict")
    assert len(predictions) == 2
    assert predictions[0]["fake"].shape == (3, SIZE, SIZE)
    assert torch.equal(predictions[1]["real"], _images(2, 1)[1])
    with pytest.raises(ValueError, match="mode"):
        model(_images(1, 0), _images(1, 1), mode="bogus")
    with pytest.raises(ValueError, match="source and driving"):
        model(_images(1, 0))


class _BasisWithoutMagnitudes(torch.nn.Module):
    latent_dim = LATENT

    def directions(self) -> torch.Tensor:
        return torch.eye(LATENT, 4)


def test_part_missing_its_interface_is_one_error_naming_what_is_missing():
    # a plugin basis that forgot `num_magnitudes` failed with an AttributeError from inside torch
    with pytest.raises(ValueError, match=r"motion basis .*_BasisWithoutMagnitudes has no num_magnitudes"):
        build(_config(motion_basis=_BasisWithoutMagnitudes()))


class _BasisOfShape(torch.nn.Module):
    """A plugin basis whose directions or paths have the given shapes."""

    latent_dim = LATENT
    num_magnitudes = 4

    def __init__(self, directions_shape, path_width=LATENT):
        super().__init__()
        self.directions_shape, self.path_width = directions_shape, path_width

    def directions(self) -> torch.Tensor:
        return torch.zeros(self.directions_shape)

    def forward(self, magnitudes: torch.Tensor) -> torch.Tensor:
        return magnitudes.new_zeros(len(magnitudes), self.path_width)


def test_basis_of_the_wrong_shape_is_one_error_at_build():
    # a transposed basis trains fine and used to fail only when its directions were inspected
    build(_config(motion_basis=_BasisOfShape((LATENT, 4))))
    with pytest.raises(
        ValueError, match=rf"directions\(\) must be None or .* = \({LATENT}, 4\), got \(4, {LATENT}\)"
    ):
        build(_config(motion_basis=_BasisOfShape((4, LATENT))))
    with pytest.raises(
        ValueError, match=rf"forward\(\(B, 4\) magnitudes\) must return \(B, {LATENT}\), got \(2, 3\)"
    ):
        build(_config(motion_basis=_BasisOfShape((LATENT, 4), path_width=3)))
    bad_count = _BasisOfShape((LATENT, 4))
    bad_count.num_magnitudes = 0
    with pytest.raises(ValueError, match="num_magnitudes must be a positive int, got 0"):
        build(_config(motion_basis=bad_count))


class _LossWithoutWeights(torch.nn.Module):
    def generator_losses(self, fake, real, fake_logits=None):
        return {"loss_l1": (fake - real).abs().mean()}


def test_loss_set_missing_its_interface_is_one_error_before_training():
    # LIA.train_step reads adversarial_weight: without it the first iteration raised an AttributeError
    with pytest.raises(
        ValueError, match=r"loss set .*_LossWithoutWeights has no discriminator_losses, .*r1_weight"
    ):
        build(_config(loss=_LossWithoutWeights()))


def test_a_perceptual_pyramid_too_deep_for_the_size_is_one_error_at_build():
    # a 32 px image at scale 0.125 is 4 px, too small for VGG19: it failed inside the first train step
    deep = dict(type="lmtk.LIALoss.v1", perceptual_weight=1.0, perceptual=dict(pretrained=False))
    with pytest.raises(ValueError, match=r"at least 128 px .* model.loss.perceptual.scales=\(1.0, 0.5\)$"):
        build(_config(loss=deep))
    fitting = dict(deep, perceptual=dict(pretrained=False, scales=(1.0, 0.5)))
    assert build(_config(loss=fitting)).loss.perceptual.min_image_size == 32


@torch.no_grad()
def test_a_double_precision_copy_matches_and_half_weights_are_refused(model):
    import copy

    source, driving = _images(2, 1), _images(2, 2)
    double = copy.deepcopy(model).double()
    net, net64 = model.net, double.net
    path, path64 = (
        net.path(net.magnitudes(net.encode_code(driving))),
        net64.path(net64.magnitudes(net64.encode_code(driving.double()))),
    )
    assert path64.dtype == torch.float64 and path.abs().max() > 0.1
    torch.testing.assert_close(path64.float(), path, atol=1e-5, rtol=1e-5)
    out = double.transfer(source.double(), driving.double())
    torch.testing.assert_close(
        out.float(), model.transfer(source, driving), atol=ATOL, rtol=0
    )  # float32's rounding
    with pytest.raises(
        ValueError,
        match=r"source is a float32 tensor but the model's weights are float64; convert it with \.to\(torch\.float64\)",
    ):
        double.transfer(source, driving)
    with pytest.raises(ValueError, match=r"weights are bfloat16: .*model\.float\(\) and use torch\.autocast"):
        copy.deepcopy(model).to(torch.bfloat16).transfer(source.bfloat16(), driving.bfloat16())


@torch.no_grad()
def test_editing_the_directions_handed_out_leaves_the_model_alone(model):
    source, driving = _images(1, 1), _images(2, 2)
    before = model.net.path(model.net.magnitudes(model.net.encode_code(driving)))
    directions = model.directions()
    directions[:, 0] *= -1
    after = model.net.path(model.net.magnitudes(model.net.encode_code(driving)))
    assert torch.equal(before, after)
    with pytest.raises(ValueError, match="driving_first batch 3 does not match driving batch 2"):
        model.transfer(source, driving, mode="relative", driving_first=_images(3, 3))


@torch.no_grad()
def test_the_generator_parts_check_code_widths_and_batches(model):
    net = model.net
    code, features = net.encode(_images(1, 1))
    with pytest.raises(ValueError, match=f"code must be \\(B, {LATENT}\\), got \\(1, 7\\)"):
        net.magnitudes(torch.zeros(1, 7))
    with pytest.raises(ValueError, match=f"latent must be \\(B, {LATENT}\\)"):
        net.decode(torch.zeros(1, 7), features)
    with pytest.raises(ValueError, match="latent batch 3 does not match the features' batch 1"):
        net.decode(code.expand(3, -1), features)
    assert net.decode(code.expand(3, -1), [f.expand(3, -1, -1, -1) for f in features]).shape[0] == 3


# ----------------------------------------------------------------------------- v1 and v2 configs
# _config() is a v1 config: v1 names the synthesis network `generator`, v2 `synthesis`
_V2 = {
    "type": "lmtk.LIA.v2",
    "synthesis": _config()["generator"],
    **{k: v for k, v in _config().items() if k not in ("type", "generator")},
}


def test_v1_and_v2_build_the_same_model():
    """v1 names the synthesis network `generator`; same modules, same state dict, same outputs."""
    v1 = _config()
    torch.manual_seed(0)
    old = build(v1).eval()
    torch.manual_seed(0)
    new = build(_V2).eval()
    assert type(old) is type(new)
    old_state, new_state = old.state_dict(), new.state_dict()
    assert list(old_state) == list(new_state)
    assert all(torch.equal(old_state[k], new_state[k]) for k in old_state)
    assert any(k.startswith("generator.synthesis.") for k in new_state)
    source, driving = _images(1, 7), _images(2, 8)
    with torch.inference_mode():
        assert torch.equal(old.transfer(source, driving), new.transfer(source, driving))


@pytest.mark.parametrize("name", ["lmtk.LIA", "lmtk.LIAX"])
def test_a_key_of_the_other_version_is_one_error_naming_the_key_to_use(name):
    parts = {k: v for k, v in _V2.items() if k != "type"}
    with pytest.raises(
        TypeError, match=rf"'{name}.v2': it takes 'synthesis' where another version of it takes 'generator'"
    ):
        build({"type": f"{name}.v2", **parts, "generator": parts["synthesis"]})
    with pytest.raises(
        TypeError, match=rf"'{name}.v1': it takes 'generator' where another version of it takes 'synthesis'"
    ):
        build({"type": f"{name}.v1", **parts})


def test_v1_keeps_the_number_checks_of_v2():
    v1 = _config()
    with pytest.raises(TypeError, match="motion_mlp_layers must be an int"):
        build({**v1, "motion_mlp_layers": "2"})
