"""A checkpoint is data, never code: a pickle that would run a command is refused by every load path.

The payload of each hostile file touches a marker file; every test asserts the marker never appears,
unless the user vouches for the file (``trust=True`` / ``--trust-checkpoint``), the only way it loads.
"""

import contextlib
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from tiny_models import TINY_LIA
from tool_scripts import load_tool

import lmtk
from lmtk.apis import Animator
from lmtk.checkpoint import CheckpointError, UntrustedCheckpointError, load_checkpoint_file
from lmtk.registry import build

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")


class Payload:
    """Unpickling this runs ``touch MARKER``: what a hostile checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "owned"


@pytest.fixture(params=["flat", "nested", "config", "registry", "safetensors"])
def hostile(request, tmp_path, marker) -> Path:
    """flat: the issue's ``{'gen': payload}``; nested: a complete lmtk checkpoint with the payload where
    mmengine keeps its message hub; config: a complete checkpoint whose stored config is code; registry
    and safetensors: a stored config, plain data, that names a function for mmengine's registry to call."""
    torch.manual_seed(0)
    lmtk.save_model(build(TINY_LIA), tmp_path / "good.pth", config=TINY_LIA)
    path = tmp_path / f"{request.param}.pth"
    calling = dict(
        TINY_LIA, data_preprocessor=dict(type="subprocess.call", args=f"touch {marker}", shell=True)
    )
    if request.param in ("registry", "safetensors"):
        path = path.with_suffix(".safetensors" if request.param == "safetensors" else ".pth")
        lmtk.save_model(build(TINY_LIA), path, config=calling)
    elif request.param == "flat":
        torch.save({"gen": Payload(marker)}, path)
    else:
        good = torch.load(tmp_path / "good.pth", weights_only=True)
        if request.param == "nested":
            good["message_hub"] = Payload(marker)
        else:
            good["meta"]["cfg"] = f"model = dict(type=__import__('os').system('touch {marker}'))\n"
        torch.save(good, path)
    return path


def _refused(error_text: str, path: Path) -> bool:
    return str(path.name) in error_text and "--trust-checkpoint" in error_text


def test_load_model_refuses_it(hostile, marker):
    with pytest.raises(CheckpointError) as info:
        lmtk.load_model(hostile)
    assert _refused(str(info.value), hostile) and len(str(info.value).splitlines()) == 1
    assert not marker.exists()


WANTED = {  # what each refusal names
    "flat": r"it needs posix\.system, which is not part of a checkpoint of weights",
    "nested": r"it needs posix\.system, which is not part of a checkpoint of weights",
    "config": r"is code, not plain data \(line 1: .*__import__",
    "registry": r"names type 'subprocess\.call', which no registry holds",
    "safetensors": r"names type 'subprocess\.call', which no registry holds",
}


def test_the_refusal_names_what_it_wanted(hostile, marker):
    if hostile.stem in ("flat", "nested"):
        with pytest.raises(UntrustedCheckpointError, match=WANTED[hostile.stem]):
            load_checkpoint_file(hostile)  # refused while unpickling
    with pytest.raises(CheckpointError, match=WANTED[hostile.stem]):
        lmtk.load_model(hostile)
    assert not marker.exists()


def test_animator_refuses_it(hostile, marker):
    with pytest.raises(CheckpointError):
        Animator(hostile)
    assert not marker.exists()


def test_trust_is_the_only_way_it_loads(hostile, marker):
    try:
        lmtk.load_model(hostile, trust=True)
    except Exception:  # noqa: BLE001 - the flat file is no model; what matters is that it was unpickled
        pass
    assert marker.exists()


@pytest.fixture
def inputs(tmp_path) -> dict:
    """A source image, a driving clip and a dataset folder holding it, all 32 px."""
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "source.png")
    (tmp_path / "data" / "test").mkdir(parents=True)
    clip = tmp_path / "data" / "test" / "clip.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for _ in range(4):
            frame = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return dict(source=tmp_path / "source.png", clip=clip, data=tmp_path / "data", out=tmp_path / "out")


TOOLS = {
    "animate": lambda c, i: ["--checkpoint", c, "--source", i["source"], "--driving", i["clip"],
                             "--output", i["out"] / "a.mp4"],
    "vis_reference": lambda c, i: ["--checkpoint", c, "--images", i["source"], "--output", i["out"] / "r.png"],
    "vis_directions": lambda c, i: ["--checkpoint", c, "--image", i["source"], "--output-dir", i["out"]],
    "analyze_directions": lambda c, i: ["--checkpoint", c, "--data-root", i["data"], "--output-dir", i["out"]],
    "test": lambda c, i: [ROOT / "configs/lia/lia_synthetic_m20.py", c, "--data-root", i["data"],
                          "--metrics", "l1", "--work-dir", i["out"], "--quiet"],
    "benchmark": lambda c, i: [c, "--iters", "1"],
    "convert_checkpoint": lambda c, i: [c, i["out"] / "converted.pth"],
}  # fmt: skip


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_every_tool_refuses_it(tool, hostile, marker, inputs, capsys):
    (inputs["out"]).mkdir()
    argv = [str(arg) for arg in TOOLS[tool](hostile, inputs)]
    try:
        code = load_tool(tool).main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    assert code not in (0, None)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("error:") and _refused(lines[-1], hostile), lines
    assert not marker.exists()
    assert not (inputs["out"] / "converted.pth").exists()


def test_convert_checkpoint_with_trust_checkpoint_loads_it(hostile, marker, tmp_path):
    try:
        load_tool("convert_checkpoint").main([str(hostile), str(tmp_path / "c.pth"), "--trust-checkpoint"])
    except Exception:  # noqa: BLE001 - the config payload builds no model; it ran, which is the point
        pass
    assert marker.exists()


def _tiny_runner(tmp_path):
    from mmengine.config import Config

    import lmtk.engine  # noqa: F401 - registers hooks and the optimizer constructor
    from lmtk.engine import LMTKRunner

    cfg = Config.fromfile(str(ROOT / "configs/lia/lia_vox_m20.py"))
    cfg.merge_from_dict(
        {
            "work_dir": str(tmp_path / "run"),
            "model.size": 32,
            "model.latent_dim": 32,
            "model.channel_base": 256,
            "model.max_channels": 32,
            "model.motion_basis.num_directions": 5,
            "model.loss.perceptual.pretrained": False,
            "model.loss.perceptual.scales": (1, 0.5),
            "train_dataloader.dataset.data_root": str(tmp_path / "no_data"),
            "train_dataloader.dataset.size": 32,
        }
    )
    return LMTKRunner.from_cfg(cfg)


@pytest.mark.parametrize("how", ["resume", "load_from"])
def test_resuming_never_runs_it(how, hostile, marker, tmp_path):
    runner = _tiny_runner(tmp_path)
    load = runner.resume if how == "resume" else runner.load_checkpoint
    if hostile.stem not in ("flat", "nested"):
        # resuming builds the model from the run's config, not the file's: its weights are read as data
        with contextlib.suppress(Exception):
            load(str(hostile))
        assert not marker.exists()
        return
    with pytest.raises(CheckpointError) as info:
        load(str(hostile))
    assert _refused(str(info.value), hostile)
    assert not marker.exists()
    runner.trust_checkpoint = True  # tools/train.py --trust-checkpoint
    with contextlib.suppress(Exception):  # what matters is that it was unpickled
        load(str(hostile))
    assert marker.exists()


def test_a_mmengine_stored_config_is_read_as_data_when_resuming(tmp_path, marker):
    # Runner.resume runs meta['config'] through Config.fromstring, which executes it
    runner = _tiny_runner(tmp_path)
    torch.manual_seed(0)
    model = getattr(runner.model, "module", runner.model)
    checkpoint = {
        "meta": {"config": f"gpu_ids = __import__('os').system('touch {marker}')\n", "epoch": 0, "iter": 0},
        "state_dict": model.state_dict(),
    }
    torch.save(checkpoint, tmp_path / "ckpt.pth")
    with pytest.raises(CheckpointError, match="is code, not plain data"):
        runner.resume(str(tmp_path / "ckpt.pth"))
    assert not marker.exists()
