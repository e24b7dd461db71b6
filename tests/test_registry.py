"""Tests for lmtk.registry: lookups, error messages listing what is available, and nested builds."""

import pytest
import torch

from lmtk import registry
from lmtk.models.generators import FlowGenerator
from lmtk.models.motion_bases import GramSchmidtBasis
from lmtk.models.warpers import FlowWarper
from lmtk.registry import KINDS, RegistryError, build, get, kind_of, list_components

TINY_GENERATOR = dict(size=16, latent_dim=8, channel_base=64, max_channels=8)


def test_every_kind_is_declared_with_entry_points():
    expected = {
        "encoders",
        "motion_bases",
        "synthesis_networks",
        "warpers",
        "discriminators",
        "loss_sets",
        "datasets",
        "metrics",
        "models",
        "keypoint_extractors",
        "identity_extractors",
    }
    assert set(KINDS) == expected
    for kind, reg in KINDS.items():
        assert reg.namespace == ("lmtk", kind)
        assert reg.entry_points and reg.entry_point_namespace == f"lmtk_{kind}"
        assert getattr(registry, kind) is reg


def test_list_components_returns_sorted_names_per_kind():
    everything = list_components()
    assert list(everything) == list(KINDS)
    for names in everything.values():
        assert names == sorted(names)
    assert "lmtk.GramSchmidtBasis.v1" in everything["motion_bases"]
    assert "lmtk.LIA.v1" in everything["models"]
    assert list_components("warpers") == {"warpers": everything["warpers"]}


def test_get_and_kind_of():
    assert get("lmtk.GramSchmidtBasis.v1") is GramSchmidtBasis
    assert get("lmtk.GramSchmidtBasis.v1", "motion_bases") is GramSchmidtBasis
    assert kind_of("lmtk.FlowWarper.v1") == "warpers"
    assert kind_of("lmtk.NoSuchThing.v1") is None


def test_unknown_name_lists_available_names_of_the_kind():
    with pytest.raises(RegistryError) as info:
        get("lmtk.GramSchmidtBasis.v9", "motion_bases")
    message = str(info.value)
    assert "lmtk.GramSchmidtBasis.v9" in message
    for name in list_components("motion_bases")["motion_bases"]:
        assert name in message
    assert "lmtk.LIA.v1" not in message  # only the kind that was asked for


def test_unknown_name_without_kind_lists_every_kind():
    with pytest.raises(RegistryError) as info:
        build(dict(type="lmtk.Nope.v1"))
    message = str(info.value)
    assert "lmtk.Nope.v1" in message
    assert "motion_bases: " in message and "lmtk.GramSchmidtBasis.v1" in message
    assert "models: " in message and "lmtk.LIA.v1" in message
    assert isinstance(info.value, KeyError)  # callers catching KeyError keep working


def test_name_of_another_kind_is_unknown_for_this_kind():
    with pytest.raises(RegistryError, match="Unknown encoders name 'lmtk.FlowWarper.v1'"):
        build(dict(type="lmtk.FlowWarper.v1"), "encoders")


def test_name_of_another_kind_says_which_kind_it_is():
    # a plugin whose entry point sits in the wrong group: the error names the group it is in
    with pytest.raises(RegistryError, match="is one of the warpers, entry-point group lmtk_warpers"):
        build(dict(type="lmtk.FlowWarper.v1"), "encoders")


@pytest.mark.parametrize("call", [lambda: list_components("bogus"), lambda: get("x", "bogus")])
def test_unknown_kind_lists_kinds(call):
    with pytest.raises(RegistryError) as info:
        call()
    message = str(info.value)
    assert "bogus" in message
    for kind in KINDS:
        assert kind in message
    assert not message.startswith(("'", '"'))  # not KeyError's quoted repr


def test_config_without_type():
    with pytest.raises(RegistryError, match="no 'type' key"):
        build(dict(latent_dim=8))


def test_non_mappings_pass_through():
    module = torch.nn.Identity()
    assert build(module) is module
    assert build(None) is None


def test_build_with_overrides_and_bad_arguments():
    basis = build(dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=8), num_directions=3)
    assert isinstance(basis, GramSchmidtBasis) and basis.directions().shape == (8, 3)
    with pytest.raises(TypeError, match="Cannot build 'lmtk.GramSchmidtBasis.v1'"):
        build(dict(type="lmtk.GramSchmidtBasis.v1", latent_dims=8))


def test_config_is_not_mutated():
    cfg = dict(type="lmtk.FlowWarper.v1", align_corners=True)
    build(cfg)
    assert cfg == dict(type="lmtk.FlowWarper.v1", align_corners=True)


def test_nested_dicts_are_built_bottom_up():
    cfg = dict(type="lmtk.FlowGenerator.v1", warper=dict(type="lmtk.FlowWarper.v1", align_corners=True))
    synthesis = build(cfg, "synthesis_networks", **TINY_GENERATOR)
    assert isinstance(synthesis, FlowGenerator)
    assert isinstance(synthesis.warper, FlowWarper) and synthesis.warper.align_corners is True
    assert build(dict(type="lmtk.FlowGenerator.v1", **TINY_GENERATOR)).warper.align_corners is False


def test_nested_build_inside_lists_and_plain_dicts():
    def collect(**kwargs):
        return kwargs

    built = build(
        dict(
            type=collect,
            parts=[dict(type="lmtk.FlowWarper.v1"), 3],
            options=dict(inner=dict(type="lmtk.DirectPath.v1", latent_dim=4), scale=2),
            pair=(dict(type="lmtk.FlowWarper.v1"), "x"),
        )
    )
    assert isinstance(built["parts"][0], FlowWarper) and built["parts"][1] == 3
    assert built["options"]["inner"].latent_dim == 4 and built["options"]["scale"] == 2
    assert isinstance(built["pair"], tuple) and isinstance(built["pair"][0], FlowWarper)


def test_foreign_typed_dicts_pass_through_unchanged():
    def collect(**kwargs):
        return kwargs

    pipeline = [dict(type="PairedRandomFlip", prob=0.5), dict(type="mmengine.SomeHook", keys=["a"])]
    built = build(dict(type=collect, pipeline=pipeline, hook=dict(type="CheckpointHook", interval=1)))
    assert built["pipeline"] == pipeline
    assert built["hook"] == dict(type="CheckpointHook", interval=1)
    assert isinstance(built["pipeline"][0], dict)


def test_lmtk_namespace_typed_dicts_must_exist():
    def collect(**kwargs):
        return kwargs

    with pytest.raises(RegistryError, match="lmtk.Missing.v1"):
        build(dict(type=collect, part=dict(type="lmtk.Missing.v1")))


@pytest.fixture
def broken_plugin(monkeypatch):
    """An installed plugin encoder whose module fails to import."""
    import importlib.metadata

    import catalogue

    broken = importlib.metadata.EntryPoint(
        "broken.Encoder.v1", "lmtk_no_such_plugin_module:Encoder", "lmtk_encoders"
    )
    available = [*catalogue.AVAILABLE_ENTRY_POINTS.select(group="lmtk_encoders"), broken]
    monkeypatch.setattr(catalogue, "AVAILABLE_ENTRY_POINTS", importlib.metadata.EntryPoints(available))
    return broken.name


def test_broken_plugin_is_listed_and_does_not_hide_other_components(broken_plugin):
    assert broken_plugin in list_components("encoders")["encoders"]
    assert broken_plugin in list_components()["encoders"]
    assert kind_of("lmtk.GramSchmidtBasis.v1") == "motion_bases"
    assert get("lmtk.LIAEncoder.v1", "encoders") is get("lmtk.LIAEncoder.v1")


@pytest.mark.parametrize("kind", ["encoders", None])
def test_broken_plugin_fails_with_one_line_naming_it(broken_plugin, kind):
    with pytest.raises(RegistryError) as caught:
        build(dict(type=broken_plugin), kind)
    message = str(caught.value)
    assert "\n" not in message
    assert f"'{broken_plugin}'" in message and "lmtk_no_such_plugin_module" in message


@pytest.mark.parametrize("kind", ["motion_bases", None])
def test_unknown_plugin_name_says_to_install_the_plugin(kind):
    # a checkpoint trained with a plugin, loaded where the plugin is not installed
    with pytest.raises(RegistryError, match="install the plugin that provides it \\(package 'myplug'\\?\\)"):
        get("myplug.CayleyBasis.v1", kind)
    with pytest.raises(RegistryError) as caught:
        get("lmtk.Missing.v1", kind)
    assert "install the plugin" not in str(caught.value)


def test_the_renamed_kind_answers_to_its_former_name_and_entry_point_group(monkeypatch):
    """`generators` is now `synthesis_networks`: code, `lmtk list generators` and plugins declared in
    the group lmtk_generators keep working."""
    import importlib.metadata

    import catalogue

    assert registry.RENAMED_KINDS == {"generators": "synthesis_networks"}
    assert registry.generators is registry.synthesis_networks
    assert list_components("generators") == list_components("synthesis_networks")
    assert get("lmtk.FlowGenerator.v1", "generators") is FlowGenerator
    assert isinstance(
        build(dict(type="lmtk.FlowGenerator.v1"), "generators", **TINY_GENERATOR), FlowGenerator
    )
    # a plugin written for the former group: lmtk_generators
    older = importlib.metadata.EntryPoint(
        "older.Synthesis.v1", "lmtk.models.generators:FlowGenerator", "lmtk_generators"
    )
    available = [*catalogue.AVAILABLE_ENTRY_POINTS.select(group="lmtk_generators"), older]
    monkeypatch.setattr(catalogue, "AVAILABLE_ENTRY_POINTS", importlib.metadata.EntryPoints(available))
    assert "older.Synthesis.v1" in list_components("synthesis_networks")["synthesis_networks"]
    assert kind_of("older.Synthesis.v1") == "synthesis_networks"
    assert get("older.Synthesis.v1", "synthesis_networks") is FlowGenerator


def test_a_plugin_cannot_replace_a_built_in_component(monkeypatch):
    import importlib.metadata

    import catalogue

    # an installed plugin that claims lmtk's own encoder name (its module need not even import)
    impostor = importlib.metadata.EntryPoint(
        "lmtk.LIAEncoder.v1", "lmtk_no_such_plugin_module:Encoder", "lmtk_encoders"
    )
    available = [*catalogue.AVAILABLE_ENTRY_POINTS.select(group="lmtk_encoders"), impostor]
    monkeypatch.setattr(catalogue, "AVAILABLE_ENTRY_POINTS", importlib.metadata.EntryPoints(available))
    monkeypatch.setattr("lmtk.registry._warned_shadowing", set())
    from lmtk.models.encoders.lia_encoder import LIAEncoder

    with pytest.warns(
        UserWarning, match="registers 'lmtk.LIAEncoder.v1' in lmtk_encoders, a name lmtk already has"
    ):
        assert get("lmtk.LIAEncoder.v1", "encoders") is LIAEncoder
    assert list_components("encoders")["encoders"].count("lmtk.LIAEncoder.v1") == 1


def test_a_near_miss_names_the_component_meant():
    # a nested config is built without its kind: the listing of all eleven kinds hid the one-letter slip
    with pytest.raises(
        RegistryError,
        match=r"'lmtk.FlowWarper.v2': did you mean 'lmtk.FlowWarper.v1' \(one of the warpers\)\?",
    ):
        get("lmtk.FlowWarper.v2")


def test_a_key_left_from_another_type_suggests_delete():
    with pytest.raises(
        TypeError, match=r"unexpected keyword argument 'num_directions' \(.*add _delete_=True"
    ):
        build(dict(type="lmtk.DirectPath.v1", latent_dim=8, num_directions=3))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10", "must be an int, got '10' \\(str\\)"),
        (10.0, "must be an int, got 10.0"),
        (True, "must be an int, got True"),
    ],
)
def test_a_number_of_the_wrong_type_names_its_key(value, message):
    # num_directions="10" failed inside torch with "'<=' not supported between 'int' and 'str'"
    with pytest.raises(TypeError, match=f"Cannot build 'lmtk.GramSchmidtBasis.v1': num_directions {message}"):
        build(dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=8, num_directions=value))
    import numpy as np

    assert (
        build(dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=np.int64(8), num_directions=3)).latent_dim == 8
    )


def test_a_stored_config_may_name_only_registered_types():
    from lmtk.registry import check_registered_types

    check_registered_types(  # lmtk's names and mmengine's registered ones
        dict(
            type="lmtk.LIA.v1",
            data_preprocessor=dict(type="BaseDataPreprocessor"),
            x=[dict(type="lmtk.LIAEncoder.v1")],
        ),
        "ok.pth",
    )
    for bad in (dict(type="subprocess.call"), dict(model=[dict(type="os.system")]), dict(type=3)):
        with pytest.raises(
            ValueError, match="the config stored in bad.pth names type .* which no registry holds"
        ):
            check_registered_types(bad, "bad.pth")
