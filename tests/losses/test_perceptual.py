"""Tests for lmtk.losses.perceptual: VGG19 features, weight loading, pyramid perceptual loss."""

from pathlib import Path

import pytest
import torch

from lmtk.losses.perceptual import (
    VGG19_LAYERS,
    AutocastFeatures,
    ImagePyramid,
    PerceptualPyramidLoss,
    VGG19Features,
    default_vgg19_weights_path,
    vgg19_weights_url,
)

torchvision = pytest.importorskip("torchvision")


@pytest.fixture(scope="module")
def vgg() -> VGG19Features:
    torch.manual_seed(0)
    return VGG19Features(pretrained=False)


@pytest.fixture(scope="module")
def loss_fn(vgg) -> PerceptualPyramidLoss:
    return PerceptualPyramidLoss(scales=(1.0, 0.5), network=vgg)


@pytest.fixture(scope="module")
def torchvision_vgg19(tmp_path_factory):
    """torchvision's ``vgg19().features`` (random) and its weights saved as in ``vgg19-dcbb9e9d.pth``."""
    torch.manual_seed(1)
    # vgg19(weights=None).features is make_layers(cfgs["E"]); building only that skips initialising the
    # 120M-parameter classifier, which the loader ignores anyway.
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"]).eval()
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.bias"] = torch.zeros(4096)  # extra keys of the full file are ignored
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    return features, path


@pytest.fixture
def empty_hub(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    if not torch.hub.get_dir().startswith(str(tmp_path)):  # torch.hub.set_dir was called earlier
        monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return Path(torch.hub.get_dir())


def _images(seed: int, batch: int = 1, size: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=generator) * 2 - 1


def test_feature_shapes(vgg):
    features = vgg(_images(0, batch=2))
    assert vgg.layer_names == VGG19_LAYERS
    assert [tuple(f.shape) for f in features] == [
        (2, 64, 32, 32),
        (2, 128, 16, 16),
        (2, 256, 8, 8),
        (2, 512, 4, 4),
        (2, 512, 2, 2),
    ]


def test_random_init_is_deterministic():
    torch.manual_seed(3)
    a = VGG19Features(pretrained=False, layers=("relu1_1",))
    torch.manual_seed(3)
    b = VGG19Features(pretrained=False, layers=("relu1_1",))
    assert torch.equal(a.layers[0].weight, b.layers[0].weight)


def test_frozen_and_always_eval(vgg, loss_fn):
    assert all(not p.requires_grad for p in vgg.parameters())
    loss_fn.train()
    assert not vgg.training
    assert all(not m.training for m in vgg.modules())


def test_zero_for_identical_images(loss_fn):
    image = _images(0)
    assert loss_fn(image, image.clone()).item() == 0.0


def test_positive_and_symmetric(loss_fn):
    a, b = _images(0), _images(1)
    ab, ba = loss_fn(a, b), loss_fn(b, a)
    assert ab.item() > 0
    assert ab.dtype == torch.float32 and ab.dim() == 0
    assert torch.allclose(ab, ba, rtol=1e-5)
    # Closer images score lower.
    assert loss_fn(a, a + 0.05 * (b - a)) < ab


def test_gradient_reaches_fake_only(loss_fn):
    fake = _images(0).requires_grad_(True)
    real = _images(1).requires_grad_(True)
    loss_fn(fake, real).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert real.grad is None
    assert all(p.grad is None for p in loss_fn.parameters())


def test_layer_weights_scale_the_loss(vgg):
    a, b = _images(0), _images(1)
    ones = PerceptualPyramidLoss(scales=(1.0,), network=vgg)(a, b)
    tens = PerceptualPyramidLoss(scales=(1.0,), layer_weights=(10.0,) * 5, network=vgg)(a, b)
    assert torch.allclose(tens, 10 * ones, rtol=1e-5)
    first_only = PerceptualPyramidLoss(scales=(1.0,), layer_weights=(1, 0, 0, 0, 0), network=vgg)(a, b)
    expected = (vgg(a)[0] - vgg(b)[0]).abs().mean()
    assert torch.allclose(first_only, expected, rtol=1e-5)


def test_pyramid_sums_scales(vgg):
    a, b = _images(0), _images(1)
    pyramid = ImagePyramid((1.0, 0.5))
    per_scale = [PerceptualPyramidLoss(scales=(s,), network=vgg)(a, b) for s in pyramid.scales]
    total = PerceptualPyramidLoss(scales=(1.0, 0.5), network=vgg)(a, b)
    assert torch.allclose(total, sum(per_scale), rtol=1e-5)


def test_image_pyramid_buffers():
    pyramid = ImagePyramid((1.0, 0.5, 0.25))
    assert [tuple(x.shape) for x in pyramid(torch.zeros(1, 3, 64, 64))] == [
        (1, 3, 64, 64),
        (1, 3, 32, 32),
        (1, 3, 16, 16),
    ]
    assert pyramid.state_dict() == {}
    pyramid.to(torch.float64)
    assert pyramid(torch.zeros(1, 3, 64, 64, dtype=torch.float64))[1].dtype == torch.float64


def test_input_is_clamped_and_cast(vgg):
    image = _images(0)
    assert all(torch.equal(f, g) for f, g in zip(vgg(image * 3), vgg(image.clamp(-1, 1) * 3)))
    # Outside autocast a bf16 image meets float32 weights.
    features = vgg(image.bfloat16())
    assert features[0].dtype == torch.float32


def test_rejects_bad_shapes(vgg, loss_fn):
    with pytest.raises(ValueError, match="too small.*relu5_1.*16 px"):
        vgg(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        vgg(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="one shape"):
        loss_fn(torch.zeros(1, 3, 32, 32), torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="layer_weights"):
        PerceptualPyramidLoss(layer_weights=(1.0, 1.0), network=vgg)
    with pytest.raises(ValueError, match="relu5_1"):
        VGG19Features(pretrained=False, layers=("relu9_9",))


def test_layer_subset_truncates_network():
    net = VGG19Features(pretrained=False, layers=("relu2_1", "relu1_1"))
    assert len(net.layers) == 7
    features = net(_images(0))
    assert [f.shape[1] for f in features] == [128, 64]


def test_missing_weights_raise_helpful_error(empty_hub):
    expected = empty_hub / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert default_vgg19_weights_path() == expected
    with pytest.raises(FileNotFoundError) as info:
        VGG19Features(pretrained=True)
    message = str(info.value)
    assert str(expected) in message
    assert "pretrained=False" in message
    assert "weights_path=" in message
    assert vgg19_weights_url() in message
    assert not expected.exists()  # nothing was downloaded


def test_weights_path_matches_torchvision(torchvision_vgg19):
    features, path = torchvision_vgg19
    net = VGG19Features(pretrained=False, weights_path=path)
    assert torch.equal(net.layers[0].weight, features[0].weight)
    assert torch.equal(net.layers[28].bias, features[28].bias)
    # The taps are torchvision's features[0:2], [2:7], [7:12], [12:21], [21:30].
    image = _images(0)
    x = ((image + 1) / 2 - net.mean) / net.std
    expected = []
    for start, stop in [(0, 2), (2, 7), (7, 12), (12, 21), (21, 30)]:
        x = features[start:stop](x)
        expected.append(x)
    for got, want in zip(net(image), expected):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)


def test_pretrained_reads_hub_cache_without_download(empty_hub, torchvision_vgg19):
    features, path = torchvision_vgg19
    cached = empty_hub / "checkpoints" / path.name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    net = VGG19Features(pretrained=True, layers=("relu1_1",))
    assert torch.equal(net.layers[0].weight, features[0].weight)


def test_bad_weights_file(tmp_path):
    path = tmp_path / "not_vgg.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(ValueError, match="features.0.bias"):
        VGG19Features(weights_path=path)


def test_autocast_features():
    # bf16 convolutions are slow on CPUs without native bf16: a two-layer network keeps this quick.
    net = VGG19Features(pretrained=False, layers=("relu1_1", "relu2_1"))
    image = _images(0)
    reference = net(image)
    pinned = AutocastFeatures(net, "float32")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = pinned(image)
        ambient = net(image)
    assert all(torch.equal(a, b) for a, b in zip(inside, reference))
    assert ambient[0].dtype == torch.bfloat16  # without the wrapper the caller's autocast applies
    fast = AutocastFeatures(net, torch.bfloat16)(image)
    assert all(f.dtype == torch.float32 for f in fast)
    assert torch.allclose(fast[0], reference[0], rtol=0.05, atol=0.05)
    with pytest.raises(ValueError, match="dtype"):
        AutocastFeatures(net, "int8")
