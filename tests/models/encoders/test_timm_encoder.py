"""lmtk.TimmEncoder.v1: the mistakes of a config that swaps in a timm backbone."""

import pytest

from lmtk.registry import build

TINY = dict(type="lmtk.TimmEncoder.v1", size=64, latent_dim=32)


def test_an_unknown_backbone_names_the_key_and_the_near_names():
    # it said to check the cached weights, although the name was wrong and pretrained was False
    with pytest.raises(
        ValueError,
        match=r"timm has no backbone 'resnet_18' \(model.encoder.backbone\); did you mean resnet18",
    ):
        build(dict(TINY, backbone="resnet_18"))


def test_missing_pretrained_weights_say_how_to_go_on(monkeypatch):
    import timm

    def offline(*args, **kwargs):
        raise OSError("An error happened while trying to locate the file on the Hub")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(
        FileNotFoundError, match=r"timm backbone 'resnet18' \(An error .*model.encoder.pretrained=False"
    ):
        build(dict(TINY, backbone="resnet18", pretrained=True))
    with pytest.raises(
        OSError, match="^An error happened"
    ):  # without pretrained weights it is not about them
        build(dict(TINY, backbone="resnet18", pretrained=False))
