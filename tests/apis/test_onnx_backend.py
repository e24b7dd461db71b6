"""The onnxruntime backend: the Animator's outputs as with PyTorch, and clean errors for a bad folder."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from tiny_models import SIZE, TINY_LIA, tiny_lia

from lmtk.apis import Animator  # noqa: E402
from lmtk.apis.onnx_backend import MANIFEST, ExportFolderError, inference_session  # noqa: E402
from lmtk.apis.onnx_export import export_onnx  # noqa: E402
from lmtk.datasets.transforms import frame_to_tensor  # noqa: E402
from lmtk.registry import build  # noqa: E402

START = 3

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx") / "export"
    export_onnx(model, folder)
    return folder


@pytest.fixture(scope="module")
def clip():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), rng.integers(
        0, 256, (9, SIZE, SIZE, 3), dtype=np.uint8
    )


def _float64_reference(model, source, frames, mode):
    """The same animation in float64 PyTorch: the exact answer both float32 runs round away from."""
    double = build(TINY_LIA).eval().double()
    double.load_state_dict(model.state_dict())
    source_t = frame_to_tensor(source)[None].double()
    frames_t = torch.stack([frame_to_tensor(f) for f in frames]).double()
    with torch.no_grad():
        first = frames_t[START : START + 1] if mode == "relative" else None
        return double.transfer(source_t, frames_t, mode=mode, driving_first=first).float()


@pytest.mark.parametrize("mode", ["relative", "absolute"])
def test_onnxruntime_animator_matches_pytorch(model, folder, clip, mode):
    source, frames = clip
    torch_frames = Animator(model, batch_size=4).animate(source, frames, mode, START, output="tensor")
    onnx_animator = Animator(folder, backend="onnxruntime", batch_size=4)
    onnx_frames = onnx_animator.animate(source, frames, mode, START, output="tensor")
    ours, theirs = torch.stack(list(onnx_frames)), torch.stack(list(torch_frames))
    assert ours.shape == theirs.shape == (len(frames), 3, SIZE, SIZE)
    # the untrained network amplifies float32 rounding: onnxruntime must be as near the float64 result as
    # PyTorch's own float32 run is (its noise floor), and near PyTorch's output in absolute terms
    exact = _float64_reference(model, source, frames, mode)
    floor = float((theirs - exact).abs().max())
    assert float((ours - exact).abs().max()) <= 2 * floor + 1e-6
    assert float((ours - theirs).abs().max()) < 1e-4
    # the start frame search runs on the same magnitudes
    assert onnx_animator.find_start_frame(source, frames) == Animator(model).find_start_frame(source, frames)


def test_exports_on_the_fly_and_reuses_a_matching_folder(model, tmp_path, clip):
    source, frames = clip
    animator = Animator(model, backend="onnxruntime", export_dir=tmp_path / "cache")
    assert (tmp_path / "cache" / MANIFEST).is_file()
    first = animator.animate_frames(source, frames, output="numpy")
    again = Animator(model, backend="onnxruntime", export_dir=tmp_path / "cache")  # read, not exported
    np.testing.assert_array_equal(again.animate_frames(source, frames, output="numpy"), first)


def test_sessions_do_not_spin(folder):
    """The Animator alternates two sessions, each with its own thread pool: a spinning idle pool would
    take the cores of the one at work."""
    session = inference_session(folder / "motion.onnx", threads=2)
    options = session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 2


def test_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found: give an export folder"):
        Animator(tmp_path / "nowhere", backend="onnxruntime")


def test_corrupt_folder_is_one_clear_error(folder, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "synthesis.onnx").write_bytes(b"not a graph")
    with pytest.raises(ExportFolderError, match="synthesis.onnx is not a readable ONNX graph"):
        Animator(broken, backend="onnxruntime")
    (broken / "synthesis.onnx").unlink()
    with pytest.raises(ExportFolderError, match="lacks the synthesis graph"):
        Animator(broken, backend="onnxruntime")
    (broken / MANIFEST).write_text("{ not json")
    with pytest.raises(ExportFolderError, match="is not valid JSON"):
        Animator(broken, backend="onnxruntime")


def test_edits_run_on_the_graphs_when_the_model_is_known(model, folder, clip):
    """Opened with the model (or its checkpoint), the onnxruntime Animator edits: the model gives the
    offsets of the named directions, the graphs the path and the image; an export folder alone cannot."""
    source = clip[0]
    torch_animator = Animator(model)
    onnx_animator = Animator(model, backend="onnxruntime", export_dir=folder)
    for edit in ({}, {0: 0.8}, {1: -0.5, 3: 0.3}):
        expected = torch_animator.edit(source, edit).astype(int)
        assert np.abs(onnx_animator.edit(source, edit).astype(int) - expected).max() <= 1
    moved = onnx_animator.edit(source, {0: 0.8}).astype(int)
    assert np.abs(moved - onnx_animator.edit(source, {})).max() > 2  # the edit moves the image
    with pytest.raises(ValueError, match="export folder does not hold"):
        Animator(folder, backend="onnxruntime").edit(source, {0: 0.8})


def test_manifest_of_other_weights_is_refused(folder):
    other = tiny_lia(seed=1)
    with pytest.raises(ExportFolderError, match="exported from other weights"):
        Animator(other, backend="onnxruntime", export_dir=folder)


def test_backend_options_are_checked(model, folder):
    with pytest.raises(ValueError, match="backend must be one of"):
        Animator(model, backend="tensorrt")
    with pytest.raises(ValueError, match="options of backend='onnxruntime'"):
        Animator(model, int8=True)
    with pytest.raises(ValueError, match="runs float32 graphs"):
        Animator(folder, backend="onnxruntime", dtype="bfloat16")
    with pytest.raises(ValueError, match="no int8 graphs"):
        Animator(folder, backend="onnxruntime", int8=True)
    # the PyTorch backend's shape check and message (lmtk.models.lia.check_image_shape)
    with pytest.raises(ValueError, match="source is 16x16 but the model size is 32; resize it first"):
        Animator(folder, backend="onnxruntime").animate_frames(
            torch.zeros(1, 3, 16, 16), torch.zeros(2, 3, 32, 32)
        )
    with pytest.raises(ValueError, match=re.escape("driving must be (B, 3, H, W), got (2, 1, 32, 32)")):
        Animator(folder, backend="onnxruntime").animate_frames(
            torch.zeros(1, 3, 32, 32), torch.zeros(2, 1, 32, 32)
        )


def test_plain_onnxruntime_example_of_the_docs_runs_and_matches(folder, clip):
    """docs/deploy.md's numpy + onnxruntime loop gives the Animator's frames."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    code = re.search(r"```python\n(import json\n.*?)```", text, re.S).group(1)
    namespace = {}
    exec(code.replace('folder = "vox_onnx"', f"folder = {str(folder)!r}"), namespace)  # noqa: S102
    source, frames = clip
    ours = np.stack(list(namespace["animate"](source, frames)))
    theirs = np.stack(list(Animator(folder, backend="onnxruntime", batch_size=1).animate(source, frames)))
    np.testing.assert_array_equal(ours, theirs)
