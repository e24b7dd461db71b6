"""Tests for lmtk.models.key_rules: the rule machinery LIA's and LIA-X's published key mappings share."""

import re

import pytest
import torch

from lmtk.checkpoint import CheckpointError
from lmtk.models.key_rules import BIAS4D, MOD_WEIGHT, SAME, check_mapped, fir_buffers, map_keys

RULES = [
    ("dec.convs.{2*s}.conv.weight", "synthesis.stages.{s}.conv_up.conv.weight", MOD_WEIGHT),
    ("dec.convs.{2*s+1}.activate.bias", "synthesis.stages.{s}.conv.act.bias", BIAS4D),
    ("enc.convs.{b+1}.weight", "encoder.blocks.{b}.weight", SAME),
]


def test_index_expressions_are_solved_and_tensors_reshaped_both_ways():
    published = {
        "dec.convs.4.conv.weight": torch.randn(1, 8, 4, 3, 3),
        "dec.convs.3.activate.bias": torch.randn(1, 8, 1, 1),
        "enc.convs.1.weight": torch.randn(2),
    }
    mapped, unknown = map_keys(published, RULES, to_lmtk=True)
    assert unknown == []
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {
        "synthesis.stages.2.conv_up.conv.weight": (8, 4, 3, 3),
        "synthesis.stages.1.conv.act.bias": (8,),
        "encoder.blocks.0.weight": (2,),
    }
    back, unknown = map_keys(mapped, RULES, to_lmtk=False)
    assert unknown == [] and back.keys() == published.keys()
    assert all(torch.equal(back[k], published[k]) for k in published)


def test_keys_no_rule_solves_are_unknown():
    # an odd index where an even one is meant, an index below the offset, another name
    keys = ["dec.convs.3.conv.weight", "enc.convs.0.weight", "dec.to_rgb1.bias"]
    mapped, unknown = map_keys(dict.fromkeys(keys, torch.zeros(1)), RULES, to_lmtk=True)
    assert mapped == {} and unknown == keys


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({}, "published checkpoint lacks 1 tensor(s) the model needs, e.g. a"),
        (
            {"a": torch.zeros(2), "b": torch.zeros(1)},
            "published checkpoint has b, which this model does not have",
        ),
        ({"a": torch.zeros(3)}, "shape mismatch for a: checkpoint (3,), model (2,)"),
    ],
)
def test_a_mapped_state_must_fit_the_model_key_by_key(state, message):
    with pytest.raises(CheckpointError, match=re.escape(message)):
        check_mapped(state, {"a": torch.zeros(2)}, "published checkpoint")
    check_mapped({"a": torch.ones(2)}, {"a": torch.zeros(2)}, "published checkpoint")


def test_fir_buffers_are_the_published_kernels():
    down, up = fir_buffers()
    expected = torch.tensor([1.0, 3.0, 3.0, 1.0])
    expected = expected[:, None] * expected[None, :]
    torch.testing.assert_close(down, expected / expected.sum(), rtol=0, atol=0)
    torch.testing.assert_close(up, 4 * expected / expected.sum(), rtol=0, atol=0)


def test_the_published_functions_keep_their_old_import_path():
    import lmtk.checkpoint
    from lmtk.models import lia_keys

    for name in ("from_published", "is_published", "published_model_config", "to_published"):
        assert getattr(lmtk.checkpoint, name) is getattr(lia_keys, name)
    with pytest.raises(AttributeError, match="has no attribute 'map_rules'"):
        lmtk.checkpoint.map_rules  # noqa: B018
