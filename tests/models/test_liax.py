"""LIA-X built from lmtk's parts: its own blocks, named directions, edits, and the published key format."""

import math
from pathlib import Path

import pytest
import torch

import lmtk
from lmtk.checkpoint import CheckpointError
from lmtk.config_file import read_config
from lmtk.layers import ResBlock
from lmtk.models import LIA, LIAX
from lmtk.models.direction_names import check_direction_names, parse_edit
from lmtk.models.generators.liax_generator import FlowResBlock, LIAXGenerator, RefineBlock
from lmtk.models.liax import LIAX_DIRECTION_NAMES
from lmtk.models.liax_keys import is_liax_state_dict, liax_model_config, to_liax
from lmtk.registry import build

SIZE = 32
LATENT = 32
NETWORK = dict(size=SIZE, latent_dim=LATENT, channel_base=256, max_channels=32)
ATOL = 2e-4
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "liax"

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_liax_config(**overrides) -> dict:
    cfg = dict(
        type="lmtk.LIAX.v1",
        encoder=dict(type="lmtk.LIAEncoder.v1", widen_first=True, **NETWORK),
        generator=dict(
            type="lmtk.LIAXGenerator.v1", norm_groups=8, num_flow_blocks=2, num_refine_blocks=2, **NETWORK
        ),
        motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=LATENT, num_directions=6),
        direction_names=dict(yaw1=4, eyes=1),
    )
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="module")
def model() -> LIAX:
    torch.manual_seed(0)
    return build(tiny_liax_config()).eval()


def _images(batch: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ----------------------------------------------------------------------------- blocks


def test_encoder_block_widens_in_its_first_conv_when_asked():
    lia, liax = ResBlock(8, 16), ResBlock(8, 16, widen_first=True)
    assert lia.conv1.conv.weight.shape == (8, 8, 3, 3) and lia.conv2.conv.weight.shape == (16, 8, 3, 3)
    assert liax.conv1.conv.weight.shape == (16, 8, 3, 3) and liax.conv2.conv.weight.shape == (16, 16, 3, 3)
    assert liax(torch.randn(1, 8, 8, 8)).shape == (1, 16, 4, 4)


def test_flow_res_block_starts_as_its_first_conv_and_adds_the_normed_branch():
    torch.manual_seed(0)
    block = FlowResBlock(16, LATENT, norm_groups=4)
    x, style = torch.randn(2, 16, 8, 8), torch.randn(2, LATENT)
    h = block.conv1(x, style)
    with torch.no_grad():
        block.gamma.fill_(0.0)
        assert torch.equal(block(x, style), h)
        block.gamma.fill_(0.5)
        torch.testing.assert_close(block(x, style), h + 0.5 * block.conv2(block.norm(h), style))
    assert block.norm.num_groups == 4 and block.conv1.noise_strength is None
    with pytest.raises(ValueError, match="norm_groups"):
        FlowResBlock(12, LATENT, norm_groups=8)


def test_refine_block_is_residual():
    torch.manual_seed(0)
    block = RefineBlock(8)
    x = torch.randn(1, 8, 8, 8)
    torch.testing.assert_close(block(x), (block.conv2(block.conv1(x)) + x) / math.sqrt(2))


def test_generator_warps_with_align_corners_and_refines_from_the_coarser_level():
    generator = LIAXGenerator(norm_groups=8, num_flow_blocks=1, num_refine_blocks=1, **NETWORK)
    assert generator.warper.align_corners is True
    assert generator.stages[0].refine_up is None and all(
        s.refine_up is not None for s in generator.stages[1:]
    )
    assert generator.feature_channels == {8: 32, 16: 16, 32: 8}


def test_the_published_layout_has_the_published_parameter_count():
    """The config of lia-x.pt, built without memory (meta tensors): 910,571,751 parameters (the fixture)."""
    with torch.device("meta"):
        model = build({**read_config(CONFIGS / "liax_512.py")["model"], "loss": None, "discriminator": None})
    assert sum(p.numel() for p in model.net.parameters()) == 910_571_751
    assert model.direction_names == LIAX_DIRECTION_NAMES and len(model.direction_names) == 14


# ----------------------------------------------------------------------------- named directions and edits


@torch.no_grad()
def test_edit_adds_offsets_to_the_source_magnitudes_before_the_path(model):
    net = model.net
    source = _images(2, 1)
    code, features = net.encode(source)
    magnitudes = net.magnitudes(code)
    offsets = torch.zeros(1, 6)
    offsets[0, 4], offsets[0, 1], offsets[0, 2] = 0.5, -0.3, 0.25
    expected = net.decode(code + net.path(magnitudes + offsets), features)
    out = model.edit(source, {"yaw1": 0.5, "eyes": -0.3, 2: 0.25})
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    # by index, or an index as text (what the tools pass), the same
    torch.testing.assert_close(model.edit(source, {4: 0.5, "1": -0.3, "2": 0.25}), out, atol=ATOL, rtol=0)
    # no edit: the source through its own motion, which differs from an edited one
    plain = model.edit(source, {})
    torch.testing.assert_close(plain, net.decode(code + net.path(magnitudes), features), atol=ATOL, rtol=0)
    assert (plain - out).abs().max() > 1e-3


@torch.no_grad()
def test_transfer_edits_the_source_then_animates(model):
    net = model.net
    source, driving, first = _images(1, 1), _images(2, 2), _images(1, 3)
    code, features = net.encode(source)
    own = net.magnitudes(code) + model.edit_offsets({"yaw1": 0.7})
    moved = net.path(net.magnitudes(net.encode_code(driving))) - net.path(
        net.magnitudes(net.encode_code(first))
    )
    expected = net.decode(code + moved + net.path(own), [f.expand(2, -1, -1, -1) for f in features])
    out = model.transfer(source, driving, mode="relative", driving_first=first, edit={"yaw1": 0.7})
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    unedited = model.transfer(source, driving, mode="relative", driving_first=first)
    assert (unedited - out).abs().max() > 1e-3


def test_edits_name_what_is_wrong(model):
    source = _images(1, 1)
    with pytest.raises(ValueError, match=r"unknown direction 'nose'.*yaw1, eyes"):
        model.edit(source, {"nose": 0.1})
    with pytest.raises(ValueError, match="out of range: the model has 6 directions"):
        model.edit(source, {6: 0.1})
    with pytest.raises(ValueError, match="must be a number"):
        model.edit(source, {"yaw1": "a lot"})
    with pytest.raises(ValueError, match="index 9, not one of the 6"):
        build(tiny_liax_config(direction_names=dict(yaw1=9)))
    with pytest.raises(ValueError, match="non-numeric"):
        check_direction_names({"3": 1}, 6)


def test_lia_takes_direction_names_too():
    torch.manual_seed(0)
    lia = build(
        dict(
            type="lmtk.LIA.v1",
            encoder=dict(type="lmtk.LIAEncoder.v1", **NETWORK),
            generator=dict(type="lmtk.FlowGenerator.v1", **NETWORK),
            motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=LATENT, num_directions=4),
            direction_names=["smile", "nod"],
        )
    ).eval()
    assert isinstance(lia, LIA) and lia.direction_names == {"smile": 0, "nod": 1}
    source = _images(1, 1)
    with torch.no_grad():
        torch.testing.assert_close(lia.edit(source, {"nod": 1.0}), lia.edit(source, {1: 1.0}))


def test_parse_edit_reads_the_tools_arguments():
    assert parse_edit(["yaw1=0.3", "13=-0.2", "yaw1=0.1"]) == {"yaw1": pytest.approx(0.4), "13": -0.2}
    for bad in ("yaw1", "=0.3", "yaw1=x"):
        with pytest.raises(ValueError, match="DIRECTION=VALUE"):
            parse_edit([bad])


# ----------------------------------------------------------------------------- the published format


def test_published_format_round_trips_through_load_model(model, tmp_path):
    state = to_liax(model.state_dict())
    assert is_liax_state_dict(state) and "dec.conv_512_2.0.gamma" in state and "dec.rgb2.up.kernel" in state
    assert "enc.enc_2r.block_512.conv1.0.weight" in state and "enc.enc_r2t.0.weight" in state
    path = tmp_path / "lia-x.pt"
    torch.save(state, path)
    loaded = lmtk.load_model(path)
    assert isinstance(loaded, LIAX) and loaded.size == SIZE
    assert liax_model_config(state)["synthesis"]["num_flow_blocks"] == 2
    source, driving = _images(1, 1), _images(2, 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded.transfer(source, driving), model.transfer(source, driving))


def test_a_broken_liax_checkpoint_names_the_key(model, tmp_path):
    state = to_liax(model.state_dict())
    del state["dec.flow2.bias"]
    torch.save(state, tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match="synthesis.stages.1.to_flow.bias"):
        lmtk.load_model(tmp_path / "cut.pt")
    state = to_liax(model.state_dict())
    state["dec.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match="dec.extra.weight"):
        lmtk.load_model(tmp_path / "extra.pt")


# ----------------------------------------------------------------------------- the Hugging Face Hub cache


def _fake_hub_cache(root, repo_id: str, filename: str, payload) -> None:
    """The layout huggingface_hub's cache has: refs/main names a snapshot holding the files."""
    folder = root / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    torch.save(payload, snapshot / filename)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return tmp_path / "hub"


def test_a_hub_file_loads_from_the_local_cache_offline(model, hub_cache):
    _fake_hub_cache(hub_cache, "someone/tiny-liax", "lia-x.pt", to_liax(model.state_dict()))
    loaded = lmtk.load_model("hf://someone/tiny-liax/lia-x.pt")
    assert isinstance(loaded, LIAX)
    source = _images(1, 1)
    with torch.no_grad():
        torch.testing.assert_close(loaded.reference(source), model.reference(source))


def test_a_hub_file_not_in_the_cache_is_one_clear_error(hub_cache):
    with pytest.raises(
        CheckpointError, match=r"cannot get lia-x.pt of Hugging Face Hub repository a/b"
    ) as error:
        lmtk.load_model("hf://a/b/lia-x.pt")
    assert "\n" not in str(error.value) and "huggingface-cli download a/b lia-x.pt" in str(error.value)
    with pytest.raises(CheckpointError, match="hf://OWNER/REPO/FILE"):
        lmtk.load_model("hf://a/b")


def test_the_sparsity_penalty_is_the_l1_of_the_driving_magnitudes():
    torch.manual_seed(0)
    loss = dict(
        type="lmtk.LIALoss.v1",
        perceptual_weight=0.0,
        adversarial_weight=0.0,
        perceptual=dict(pretrained=False),
    )
    sparse = build(
        tiny_liax_config(
            sparsity_weight=0.5,
            loss=loss,
            discriminator=dict(
                type="lmtk.StyleGAN2Discriminator.v1", size=SIZE, channel_base=256, max_channels=32
            ),
        )
    )
    source, driving = _images(2, 1), _images(2, 2)
    losses = sparse(source, driving, mode="loss")
    net = sparse.net
    expected = 0.5 * net.magnitudes(net.encode_code(driving)).abs().mean()
    torch.testing.assert_close(losses["loss_sparsity"], expected)
    losses["loss_sparsity"].backward()
    assert net.motion_mlp.layers[0].weight.grad.abs().sum() > 0
    plain = build(
        tiny_liax_config(
            loss=loss,
            discriminator=dict(
                type="lmtk.StyleGAN2Discriminator.v1", size=SIZE, channel_base=256, max_channels=32
            ),
        )
    )
    assert "loss_sparsity" not in plain(source, driving, mode="loss")
    with pytest.raises(ValueError, match="sparsity_weight"):
        build(tiny_liax_config(sparsity_weight=-1.0))
