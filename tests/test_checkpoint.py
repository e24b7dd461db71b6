"""The published LIA checkpoint format: loading reproduces the published outputs; export round-trips."""

import copy
import shutil

import pytest
import torch
from conformance_rules import conformance_state
from tiny_models import TINY_LIA

import lmtk
from lmtk.checkpoint import CheckpointError, checkpoint_path, load_checkpoint_file
from lmtk.models.lia_keys import to_published


@pytest.fixture(scope="module")
def published(conformance_dir):
    return {
        "gen": conformance_state(conformance_dir, "generator"),
        "dis": conformance_state(conformance_dir, "discriminator"),
    }


@pytest.fixture(scope="module")
def published_file(published, tmp_path_factory):
    path = tmp_path_factory.mktemp("published") / "vox.pt"
    torch.save(published, path)
    return path


@pytest.fixture(scope="module")
def official(conformance_dir):
    return torch.load(conformance_dir / "official_outputs.pt")


@pytest.fixture(scope="module")
def model(published_file):
    return lmtk.load_model(published_file)


def rel_err(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours.float() - theirs.float()).norm() / theirs.float().norm()).item()


def test_architecture_is_inferred(model):
    assert model.size == 256
    assert model.directions().shape == (512, 20)
    assert model.discriminator is not None


@torch.no_grad()
def test_codes_magnitudes_directions_match(model, official):
    net = model.net
    code, _ = net.encode(official["source"])
    assert rel_err(code, official["latent_source"]) < 1e-4
    assert (
        rel_err(net.magnitudes(net.encode_code(official["driving"])), official["magnitudes_driving"]) < 1e-4
    )
    assert (
        rel_err(net.magnitudes(net.encode_code(official["driving_first"])), official["magnitudes_first"])
        < 1e-4
    )
    assert rel_err(model.directions(), official["directions"]) < 1e-4


@torch.no_grad()
def test_images_match(model, official):
    source, driving, first = official["source"], official["driving"], official["driving_first"]
    errors = {
        "absolute": rel_err(model.transfer(source, driving, mode="absolute"), official["out_absolute"]),
        "relative": rel_err(
            model.transfer(source, driving, mode="relative", driving_first=first), official["out_relative"]
        ),
        "reference": rel_err(model.reference(source), official["out_reference"]),
        "discriminator": rel_err(model.discriminator(source), official["discriminator_logits"]),
    }
    assert all(e < 1e-4 for e in errors.values()), errors


def test_export_round_trips_exactly(model, published):
    exported = to_published(model.state_dict(), model.published_extras)
    for network in ("gen", "dis"):
        assert exported[network].keys() == published[network].keys()
        for key, value in published[network].items():
            assert exported[network][key].shape == value.shape, key
            assert torch.equal(exported[network][key], value), key


def test_lmtk_checkpoint_round_trip(model, tmp_path, official):
    path = tmp_path / "lmtk.pth"
    lmtk.save_model(model, path)
    again = lmtk.load_model(path)
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    assert again.published_extras.keys() == model.published_extras.keys() or not model.published_extras


def test_a_checkpoint_with_distributed_wrapper_keys_loads(model, tmp_path):
    path = tmp_path / "ddp.pth"
    lmtk.save_model(model, path)
    checkpoint = torch.load(path, weights_only=False)
    # as distributed runs used to save it: each network's keys carry its DDP wrapper's "module."
    checkpoint["state_dict"] = {
        k.replace("generator.", "generator.module.", 1).replace(
            "discriminator.", "discriminator.module.", 1
        ): v
        for k, v in checkpoint["state_dict"].items()
    }
    torch.save(checkpoint, path)
    again = lmtk.load_model(path)
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


def test_a_work_dir_means_its_newest_checkpoint(model, tmp_path):
    work_dir = tmp_path / "work_dir"
    lmtk.save_model(model, work_dir / "iter_20.pth")
    (work_dir / "last_checkpoint").write_text(str(work_dir / "iter_20.pth"))
    assert checkpoint_path(work_dir) == work_dir / "iter_20.pth"
    again = lmtk.load_model(work_dir)
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key

    copied = tmp_path / "copied"
    shutil.copytree(work_dir, copied)  # last_checkpoint names the original's file, which still exists
    assert checkpoint_path(copied) == copied / "iter_20.pth"
    moved = tmp_path / "moved"
    work_dir.rename(moved)  # last_checkpoint still names the old place
    assert checkpoint_path(moved) == moved / "iter_20.pth"

    (moved / "iter_20.pth").unlink()
    with pytest.raises(CheckpointError, match="last_checkpoint names .*iter_20.pth, which does not exist"):
        lmtk.load_model(moved)
    (moved / "last_checkpoint").write_text("\n")  # a run killed while it wrote the record
    with pytest.raises(CheckpointError, match="last_checkpoint is empty; pass a checkpoint file in"):
        lmtk.load_model(moved)
    (moved / "last_checkpoint").unlink()
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint: pass a checkpoint file in it"):
        lmtk.load_model(moved)


def test_an_unreadable_checkpoint_says_what_is_wrong_with_the_file(model, tmp_path):
    whole = tmp_path / "whole.pth"
    lmtk.save_model(model, whole)
    files = {
        "empty.pth": b"",
        "cut.pth": whole.read_bytes()[: whole.stat().st_size // 2],
        "noise.pth": b"\xa2" * 99,
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError) as error:
            lmtk.load_model(tmp_path / name)
        what = "the file is empty" if not content else "the file is cut short or not a PyTorch checkpoint"
        assert str(error.value).startswith(f"cannot read checkpoint {tmp_path / name}: {what}")
        assert "an earlier iter_*.pth" in str(error.value) and "This is an internal" not in str(error.value)


def test_bad_checkpoints_name_the_key(published, tmp_path):
    broken = {"gen": dict(published["gen"])}
    del broken["gen"]["dec.convs.3.conv.modulation.bias"]
    torch.save(broken, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="synthesis.stages.1.conv.conv.affine.bias"):
        lmtk.load_model(tmp_path / "missing.pt")

    unknown = {"gen": dict(published["gen"])}
    unknown["gen"]["dec.extra.weight"] = torch.zeros(1)
    torch.save(unknown, tmp_path / "unknown.pt")
    with pytest.raises(CheckpointError, match="dec.extra.weight"):
        lmtk.load_model(tmp_path / "unknown.pt")

    misshaped = {"gen": dict(published["gen"])}
    misshaped["gen"]["enc.fc.2.bias"] = torch.zeros(7)
    torch.save(misshaped, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="motion_mlp.layers.2.bias"):
        lmtk.load_model(tmp_path / "shape.pt")

    with pytest.raises(CheckpointError, match="not found"):
        lmtk.load_model(tmp_path / "nope.pt")


def test_convert_tool_round_trips(published_file, published, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parents[1] / "tools" / "convert_checkpoint.py"
    lmtk_file, back = tmp_path / "vox_lmtk.pth", tmp_path / "vox_back.pt"
    for args in ([published_file, lmtk_file], [lmtk_file, back, "--to", "published"]):
        result = subprocess.run([sys.executable, str(tool), *map(str, args)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    exported = torch.load(back)
    for network in ("gen", "dis"):
        assert exported[network].keys() == published[network].keys()
        assert all(torch.equal(exported[network][k], v) for k, v in published[network].items())
    bad = subprocess.run(
        [sys.executable, str(tool), str(tmp_path / "none.pt"), str(tmp_path / "x.pth")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "error:" in bad.stderr and "Traceback" not in bad.stderr


def test_a_bare_state_dict_loads_with_the_model_config(model, tmp_path):
    from lmtk.apis import model_config_of

    torch.save(model.state_dict(), tmp_path / "weights.pth")
    with pytest.raises(CheckpointError, match="stores no config; pass config="):
        lmtk.load_model(tmp_path / "weights.pth")
    again = lmtk.load_model(tmp_path / "weights.pth", config=model_config_of(model))  # the model entry alone
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    with pytest.raises(CheckpointError, match="no 'model' entry"):
        lmtk.load_model(tmp_path / "weights.pth", config={"size": 256})


@pytest.mark.parametrize(
    "text, message",
    [
        ("model = 1\n", "'model' entry is 1, not a dict"),
        ("model = [1, 2]\n", "'model' entry is \\[1, 2\\], not a dict"),
        ("model = dict(\n", "not valid|failed when run \\(SyntaxError"),
        ("raise RuntimeError('boom')\n", "is code|failed when run \\(RuntimeError: boom\\)"),
    ],
)
@pytest.mark.parametrize("trust", [False, True])
def test_a_broken_stored_config_is_one_checkpoint_error(model, tmp_path, text, message, trust):
    """Trusted or not, a stored config that is no model config is a CheckpointError naming what is wrong
    (a user's tool prints it as one line), never the TypeError or the config's own error."""
    torch.save({"state_dict": model.state_dict(), "meta": {"cfg": text}}, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match=message):
        lmtk.load_model(tmp_path / "broken.pth", trust=trust)


# ------------------------------------------------------------------------------------ writing and safetensors
@pytest.fixture(scope="module")
def tiny():
    from lmtk.registry import build

    torch.manual_seed(0)
    model = build(TINY_LIA).eval()
    model.config = copy.deepcopy(TINY_LIA)
    return model


def test_the_published_model_round_trips_through_safetensors(model, published, tmp_path):
    path = tmp_path / "vox.safetensors"
    lmtk.save_model(model, path)  # the format follows the suffix
    assert not path.read_bytes().startswith((b"PK", b"\x80"))  # neither a PyTorch zip nor a pickle
    again = lmtk.load_model(path)
    assert all(again.config[key] == value for key, value in model.config.items())
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    exported = to_published(again.state_dict(), again.published_extras)  # the unused extras came along
    assert all(torch.equal(exported["gen"][k], v) for k, v in published["gen"].items())


def test_loading_safetensors_never_unpickles(tiny, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"a safetensors file is named with \.safetensors"):
        lmtk.save_model(tiny, tmp_path / "tiny.pth", format="safetensors")
    with pytest.raises(ValueError, match="format='onnx'"):
        lmtk.save_model(tiny, tmp_path / "tiny.onnx", format="onnx")
    lmtk.save_model(tiny, tmp_path / "tiny.safetensors", format="safetensors")

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called on a safetensors file")

    monkeypatch.setattr(torch, "load", no_unpickling)
    again = lmtk.load_model(tmp_path / "tiny.safetensors")
    assert all(torch.equal(again.state_dict()[k], v) for k, v in tiny.state_dict().items())


def test_a_training_checkpoint_loads_without_trust(tiny, tmp_path):
    # what mmengine adds to a training checkpoint: its message hub's HistoryBuffer (whose statistics
    # pickle through getattr), NumPy RNG states and scalars; all allowed, nothing else
    import random

    import numpy as np
    from mmengine.logging import MessageHub

    hub = MessageHub.get_instance("lmtk_checkpoint_test")
    hub.update_scalar("train/loss", np.float64(0.5))
    hub.update_scalar("train/loss", 0.25)
    hub.update_info("iter", 3)
    checkpoint = {
        "meta": {
            "cfg": "model = " + repr(TINY_LIA) + "\n",
            "iter": 3,
            "rng_state": {"numpy": np.random.get_state(), "python": random.getstate()},
            "dataset_meta": {"mean": np.float32(0.5), "std": np.array([0.5, 0.5], dtype=np.float16)},
        },
        "state_dict": tiny.state_dict(),
        "message_hub": hub.state_dict(),
    }
    torch.save(checkpoint, tmp_path / "iter_3.pth")
    loaded = load_checkpoint_file(tmp_path / "iter_3.pth")
    buffer = loaded["message_hub"]["log_scalars"]["train/loss"]
    assert buffer.mean() == 0.375 and buffer.current() == 0.25
    assert loaded["meta"]["rng_state"]["numpy"][1].tolist() == np.random.get_state()[1].tolist()
    assert isinstance(lmtk.load_model(tmp_path / "iter_3.pth"), torch.nn.Module)


def test_getattr_is_allowed_only_for_the_message_hub_statistics(tmp_path):
    import argparse

    class Reach:
        def __reduce__(self):  # a general getattr reaches anything from an allowed class
            return (getattr, (argparse.Namespace, "__init__"))

    torch.save({"x": Reach()}, tmp_path / "reach.pth")
    with pytest.raises(CheckpointError, match=r"it needs argparse\.Namespace\.__init__, which is not"):
        load_checkpoint_file(tmp_path / "reach.pth")


def test_a_random_pickle_is_one_error_without_warnings(tmp_path):
    import pickle
    import warnings

    (tmp_path / "random.pth").write_bytes(pickle.dumps([1, 2, {"a": 3}], protocol=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match="not a PyTorch checkpoint") as error:
            lmtk.load_model(tmp_path / "random.pth")
    assert not caught, [str(w.message) for w in caught]
    assert len(str(error.value).splitlines()) == 1 and error.value.__cause__ is None


def test_save_model_writes_files_as_the_umask_says(tiny, tmp_path):
    import os
    import stat

    for umask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        previous = os.umask(umask)
        try:
            lmtk.save_model(tiny, tmp_path / f"{umask:o}.pth")
        finally:
            os.umask(previous)
        assert stat.S_IMODE((tmp_path / f"{umask:o}.pth").stat().st_mode) == mode, oct(umask)


def _one_clean_error(error: BaseException) -> str:
    """The message of ``error``, checked to be one line with no chained exception behind it."""
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert len(str(error).splitlines()) == 1
    return str(error)


def test_save_model_into_a_folder_names_it(tiny, tmp_path):
    (tmp_path / "models").mkdir()
    with pytest.raises(OSError) as error:
        lmtk.save_model(tiny, tmp_path / "models")
    message = _one_clean_error(error.value)
    assert message.startswith(f"{tmp_path / 'models'} is a folder; name a file in it, e.g. ")
    assert ".tmp" not in message and not any((tmp_path / "models").iterdir())


@pytest.mark.parametrize("failure", ["full disk", "read-only folder"])
def test_save_model_that_cannot_write_names_the_file_and_leaves_nothing(failure, tiny, tmp_path, monkeypatch):
    import errno
    import os
    import tempfile

    from lmtk import checkpoint

    # tests run as root, whom chmod does not stop: the failing calls are simulated
    if failure == "full disk":

        def full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(checkpoint.os, "fsync", full)
        expected = (
            f"cannot write {tmp_path / 'm.pth'}: the disk is full; free some space there or write elsewhere"
        )
    else:

        def denied(*args, dir=None, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, ".m.pth.x.tmp"))

        monkeypatch.setattr(tempfile, "mkstemp", denied)
        expected = f"cannot write {tmp_path / 'm.pth'}: {tmp_path} is not writable (Permission denied)"
    with pytest.raises(OSError) as error:
        lmtk.save_model(tiny, tmp_path / "m.pth")
    assert _one_clean_error(error.value).startswith(expected)
    assert not list(tmp_path.iterdir())
