"""Tests for lmtk.models.lia_generator: the transfer equations (eq. 11 and 12) written once, and every
caller computing its target code through them."""

import importlib.util
from pathlib import Path

import pytest
import torch

import lmtk.apis.animator
import lmtk.models.lia_generator
from lmtk.apis import Animator
from lmtk.models.lia_generator import transfer_latent
from lmtk.registry import build

REPO = Path(__file__).resolve().parents[2]
SIZE = 32
NETWORK = dict(size=SIZE, latent_dim=32, channel_base=256, max_channels=32)
V2 = dict(
    type="lmtk.LIA.v2",
    encoder=dict(type="lmtk.LIAEncoder.v1", **NETWORK),
    synthesis=dict(type="lmtk.FlowGenerator.v1", **NETWORK),
    motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=32, num_directions=5),
    motion_mlp_layers=2,
)


def _tensors(*shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=generator) for shape in shapes]


def test_transfer_latent_is_eq_11_and_12():
    code, driving, start, own, edit = _tensors((1, 16), (4, 16), (1, 16), (1, 16), (1, 16))
    # the same operations in the same order: equal to the bit
    assert torch.equal(transfer_latent(code, driving), code + driving)
    assert torch.equal(transfer_latent(code, driving, edit_path=edit), code + driving + edit)
    assert torch.equal(transfer_latent(code, driving, start, own), code + (driving - start) + own)
    # relative transfer keeps the source's edit in its own path: edit_path is absolute mode's
    assert torch.equal(transfer_latent(code, driving, start, own, edit), code + (driving - start) + own)
    # a driving frame at the start pose gives the source's own pose, z_{s->s} = z_{s->r} + w_{r->s}
    torch.testing.assert_close(
        transfer_latent(code, start.expand(4, -1), start, own), (code + own).expand(4, -1)
    )
    assert transfer_latent(code, driving, start.expand(4, -1), own).shape == (4, 16)
    with pytest.raises(ValueError, match="relative transfer .* needs the source's own path"):
        transfer_latent(code, driving, start)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build(V2).eval()


def _images(batch, seed):
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@torch.inference_mode()
def test_animate_is_the_decoded_transfer_latent(model):
    net = model.net
    source, driving, first = _images(1, 1), _images(3, 2), _images(1, 3)
    encoded = net.encode_source(source)
    code, features = net.encode(source)
    own = net.path(net.magnitudes(code))
    assert torch.equal(encoded.code, code) and torch.equal(encoded.path, own) and encoded.edit_path is None
    path = net.motion(driving)[1]
    start = net.motion(first)[1]
    wide = [f.expand(3, -1, -1, -1) for f in features]
    assert torch.equal(net.animate(encoded, path), net.decode(code + path, wide))
    assert torch.equal(net.animate(encoded, path, start), net.decode(code + (path - start) + own, wide))
    offsets = torch.zeros(1, 5)
    offsets[0, 2] = 0.7
    edited = net.encode_source(source, offsets)
    assert torch.equal(edited.path, net.path(net.magnitudes(code) + offsets))
    assert torch.equal(edited.edit_path, net.path(offsets))


def _shifted(shift):
    """transfer_latent moved by ``shift``: a caller computing the target code another way would not move."""
    original = lmtk.models.lia_generator.transfer_latent

    def moved(*args, **kwargs):
        return original(*args, **kwargs) + shift

    return moved


@torch.inference_mode()
def test_every_caller_computes_the_target_code_with_transfer_latent(model, monkeypatch, shared_data):
    """LIA.transfer and .edit, the training forward, the Animator (its two backends share the code
    that calls it), reconstruct_video and tools/vis_directions.py."""
    from lmtk.evaluation.reconstruction import reconstruct_video

    spec = importlib.util.spec_from_file_location("vis_directions", REPO / "tools" / "vis_directions.py")
    vis_directions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vis_directions)
    source, driving, first = _images(1, 4), _images(2, 5), _images(1, 6)
    frames = ((driving.permute(0, 2, 3, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    video = shared_data / "vox" / "driving1.mp4"
    calls = {
        "transfer absolute": lambda: model.transfer(source, driving),
        "transfer relative": lambda: model.transfer(source, driving, mode="relative", driving_first=first),
        "edit": lambda: model.edit(source, {1: 0.5}),
        "training forward": lambda: model(source.expand(2, -1, -1, -1), driving, mode="tensor"),
        "animator absolute": lambda: Animator(model).animate_frames(source, frames, mode="absolute"),
        "animator relative": lambda: Animator(model).animate_frames(source, frames, mode="relative"),
        "animator stream": lambda: torch.stack(
            list(Animator(model).stream(source, iter(frames), output="tensor"))
        ),
        "reconstruct_video": lambda: reconstruct_video(model, video, max_frames=2)[1][0],
        "vis_directions": lambda: vis_directions.direction_sweeps(
            model, source, [0], torch.tensor([0.0, 1.0])
        ),
    }
    before = {name: call() for name, call in calls.items()}
    shift = torch.zeros(1, 32)
    shift[0, :4] = 5.0
    monkeypatch.setattr(lmtk.models.lia_generator, "transfer_latent", _shifted(shift))
    monkeypatch.setattr(lmtk.apis.animator, "transfer_latent", lmtk.models.lia_generator.transfer_latent)
    unmoved = [name for name, call in calls.items() if torch.allclose(call(), before[name], atol=1e-3)]
    assert not unmoved, f"these compute the target code without transfer_latent: {unmoved}"
