"""Tests for lmtk.models.interfaces: a component that breaks its contract is one line naming what."""

import pytest
import torch

from lmtk.models.interfaces import CONTRACTS, check_interface
from lmtk.registry import build

LATENT, SIZE = 32, 32
NETWORK = dict(size=SIZE, latent_dim=LATENT, channel_base=256, max_channels=32)
TINY_LIA = dict(
    type="lmtk.LIA.v2",
    encoder=dict(type="lmtk.LIAEncoder.v1", **NETWORK),
    synthesis=dict(type="lmtk.FlowGenerator.v1", **NETWORK),
    motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=LATENT, num_directions=4),
)


class _EncoderWithoutFeatureChoice(torch.nn.Module):
    latent_dim, size, feature_channels = LATENT, SIZE, {8: 4}

    def forward(self, image):  # no with_features: LIAGenerator.encode_code passes it
        return image.flatten(1)[:, :LATENT], []


class _WarperWithoutForward(torch.nn.Module):
    pass


class _SynthesisWithoutSize(torch.nn.Module):
    latent_dim, feature_channels = LATENT, {8: 4}

    def forward(self, latent, features, return_levels=False):
        return latent


@pytest.mark.parametrize(
    "module, contract, message",
    [
        (
            _SynthesisWithoutSize(),
            "synthesis_networks",
            r"^synthesis network .*_SynthesisWithoutSize has no size; a synthesis network needs latent_dim, "
            r"size, feature_channels, forward \(lmtk/models/interfaces.py, docs/plugins.md\)$",
        ),
        (
            _WarperWithoutForward(),
            "warpers",
            r"^warper .*_WarperWithoutForward has no forward; a warper needs forward ",
        ),
        (
            _EncoderWithoutFeatureChoice(),
            "encoders",
            r"^encoder .*_EncoderWithoutFeatureChoice: forward\(image, with_features=...\) does not fit its "
            r"signature forward\(image\) .*; see Encoder in lmtk/models/interfaces.py",
        ),
    ],
)
def test_a_component_that_breaks_its_contract_is_one_line_naming_what(module, contract, message):
    with pytest.raises(ValueError, match=message) as error:
        check_interface(module, CONTRACTS[contract])
    assert "\n" not in str(error.value)


def test_the_model_checks_every_part_against_its_contract():
    config = TINY_LIA
    with pytest.raises(ValueError, match="^encoder .*_EncoderWithoutFeatureChoice: forward"):
        build({**config, "encoder": _EncoderWithoutFeatureChoice()})
    with pytest.raises(ValueError, match="^warper .*_WarperWithoutForward has no forward"):
        build({**config, "synthesis": dict(config["synthesis"], warper=_WarperWithoutForward())})
    with pytest.raises(ValueError, match="^discriminator .*_WarperWithoutForward has no forward"):
        build({**config, "discriminator": _WarperWithoutForward()})
