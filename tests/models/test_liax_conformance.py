"""The published LIA-X checkpoint (lia-x.pt): lmtk loads it and computes the published function.

The fixture (``$LMTK_CONFORMANCE/liax``, its README.md) holds the checkpoint's keys and the published
code's float32 outputs for weights made by a fixed rule. The 512 px model is slow on a CPU (about 1 min
per image through the encoder, 3.5 min through the decoder, on one thread): the codes, magnitudes,
directions, latents and one decoded image are checked here; the other decoded images only with
``LMTK_SLOW_CONFORMANCE=1``.
"""

import json
import os
import time

import pytest
import torch
from conformance_rules import seeded_state

import lmtk
from lmtk.models.lia_generator import transfer_latent

# the README's bars: codes, magnitudes and directions 1e-5; images 2e-4 in float32 (its noise floor)
CODE_BAR = 1e-5
IMAGE_BAR = 2e-4


def rel_err(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours.double() - theirs.double()).norm() / theirs.double().norm()).item()


def images(u8: torch.Tensor) -> torch.Tensor:
    """The published preprocessing: float64 division, then float32."""
    return (torch.from_numpy(u8.numpy() / 255.0).float() - 0.5) * 2.0


@pytest.fixture(scope="module")
def liax_dir(conformance_dir):
    folder = conformance_dir / "liax"
    if not (folder / "liax_keys.json").is_file():
        pytest.skip(f"LIA-X conformance fixture not found in {folder}")
    return folder


def liax_state(folder) -> dict:
    """The fixture's weights, by the README's rule: the file lia-x.pt would be."""
    keys = json.loads((folder / "liax_keys.json").read_text())["generator"]
    return seeded_state(keys, torch.load(folder / "liax_buffers.pt", weights_only=True))


@pytest.fixture(scope="module")
def model(liax_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("liax") / "lia-x.pt"
    torch.save(liax_state(liax_dir), path)  # a bare state dict, as published; 3.6 GB
    try:
        yield lmtk.load_model(path)
    finally:
        path.unlink()


@pytest.fixture(scope="module")
def official(liax_dir):
    return torch.load(liax_dir / "liax_outputs.pt", weights_only=True)


@pytest.fixture(scope="module")
def encoded(model, official):
    """Everything the encoder gives for the fixture's inputs (five image passes, once per module)."""
    net = model.net
    with torch.no_grad():
        code, features = net.encode(images(official["source_uint8"]))
        return {
            "code": code,
            "features": features,
            "source": net.magnitudes(code),
            "first": net.magnitudes(net.encode_code(images(official["driving_first_uint8"]))),
            "driving": net.magnitudes(net.encode_code(images(official["driving_uint8"]))),
        }


def edit_of(official, name: str) -> dict[int, float]:
    return {int(i): float(v) for i, v in zip(official[f"{name}_ids"], official[f"{name}_values"])}


# One test for what CI checks: the weights and the encoder passes are built once (module fixtures), and
# xdist's workers could otherwise run this module's tests apart and build them twice (tests/conftest.py).
@pytest.mark.slow(minutes=9)  # 3.6 GB of weights, five images through the encoder, one through the decoder
def test_the_published_checkpoint_computes_the_published_function(model, official, encoded):
    _check_architecture(model)
    _check_codes_magnitudes_directions_and_latents(model, official, encoded)
    _check_one_reference_image_and_its_levels(model, official, encoded)


def _check_architecture(model) -> None:
    """Loaded as LIA-X, its architecture inferred from the bare state dict."""
    assert type(model).__name__ == "LIAX"
    assert model.size == 512 and model.net.latent_dim == 1024
    assert model.directions().shape == (1024, 40)
    assert model.discriminator is None
    assert model.direction_names["yaw1"] == 37 and model.direction_names["eyes"] == 13


def _check_codes_magnitudes_directions_and_latents(model, official, encoded) -> None:
    net = model.net
    errors = {
        "latent_source": rel_err(encoded["code"], official["latent_source"]),
        "features_8": rel_err(encoded["features"][0], official["features_8"]),
        "magnitudes_source": rel_err(encoded["source"], official["magnitudes_source"]),
        "magnitudes_first": rel_err(encoded["first"], official["magnitudes_first"]),
        "magnitudes_driving": rel_err(encoded["driving"], official["magnitudes_driving"]),
        "directions": rel_err(model.directions(), official["directions"]),
    }
    with torch.no_grad():
        code, own = encoded["code"], encoded["source"]
        edited = own + model.edit_offsets(edit_of(official, "edit"))
        animated = own + model.edit_offsets(edit_of(official, "animate"))
        driving, first = net.path(encoded["driving"]), net.path(encoded["first"])
        errors.update(
            magnitudes_edit=rel_err(edited, official["magnitudes_edit"]),
            magnitudes_source_animate=rel_err(animated, official["magnitudes_source_animate"]),
            latent_edit=rel_err(transfer_latent(code, net.path(edited)), official["latent_edit"]),
            latent_animate=rel_err(
                transfer_latent(code, driving, first, net.path(animated)), official["latent_animate"]
            ),
        )
    print("relative errors:", {k: f"{v:.2e}" for k, v in errors.items()})
    assert all(e < CODE_BAR for e in errors.values()), errors


def _check_one_reference_image_and_its_levels(model, official, encoded) -> None:
    """Sample 0's reference image, and each coarse level's flow logits and RGB on the way."""
    start = time.perf_counter()
    with torch.no_grad():
        image, levels = model.net.decode(
            encoded["code"][:1], [f[:1] for f in encoded["features"]], return_levels=True
        )
    errors = {"out_reference[0]": rel_err(image, official["out_reference"][:1])}
    for level in levels[:5]:
        r = level["logits"].shape[-1]
        errors[f"flow_logits_{r}"] = rel_err(level["logits"], official[f"reference_flow_logits_{r}"][:1])
        errors[f"rgb_{r}"] = rel_err(level["rgb"], official[f"reference_rgb_{r}"][:1])
    print(
        f"decoded in {time.perf_counter() - start:.0f} s; relative errors:",
        {k: f"{v:.2e}" for k, v in errors.items()},
    )
    assert all(e < IMAGE_BAR for e in errors.values()), errors


def latents(model, official, encoded) -> dict[str, torch.Tensor]:
    """What the decoder gets for each published output: as is, edited, and edited then animated."""
    net, code, own = model.net, encoded["code"], encoded["source"]
    driving, first = net.path(encoded["driving"]), net.path(encoded["first"])
    animated = net.path(own + model.edit_offsets(edit_of(official, "animate")))
    return {
        "out_reference": code,
        "out_edit": transfer_latent(code, net.path(own + model.edit_offsets(edit_of(official, "edit")))),
        "out_animate": transfer_latent(code, driving, first, animated),  # eq. 12 after the edit
    }


@pytest.mark.skipif(
    os.environ.get("LMTK_SLOW_CONFORMANCE") != "1",
    reason="3.5 min per image on one CPU: LMTK_SLOW_CONFORMANCE=1",
)
@pytest.mark.slow(minutes=5)
@pytest.mark.parametrize(
    "output, sample",
    [("out_edit", 0), ("out_animate", 0), ("out_edit", 1), ("out_animate", 1), ("out_reference", 1)],
)
def test_every_decoded_image_matches(model, official, encoded, output, sample):
    """The other decoded images, one image per test (out_reference[0] is checked above). Run them in
    one process (``-n 0``): each needs the module's weights and encodings.

    ``model.edit`` and ``model.transfer(..., edit=)`` compose these latents (tests/models/test_liax.py)."""
    start = time.perf_counter()
    with torch.no_grad():
        latent = latents(model, official, encoded)[output][sample : sample + 1]
        image = model.net.decode(latent, [f[sample : sample + 1] for f in encoded["features"]])
    error = rel_err(image, official[output][sample : sample + 1])
    print(f"{output}[{sample}]: relative error {error:.2e} ({time.perf_counter() - start:.0f} s)", flush=True)
    assert error < IMAGE_BAR
