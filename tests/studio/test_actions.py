"""What the studio's tabs do, without the web page: edits, names, animation, live frames, page errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import TINY_LIA, tiny_lia

import lmtk
from lmtk.apis import VideoWriter
from lmtk.datasets.video_reader import open_video
from lmtk.studio import Studio, StudioError, labels_path

pytestmark = pytest.mark.usefixtures("one_thread")


def _face(seed: int, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    lmtk.save_model(tiny_lia(), path, config=TINY_LIA)
    return path


@pytest.fixture
def studio(checkpoint, tmp_path):
    return Studio(checkpoint, tmp_path / "work", max_seconds=2.0)


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source.png"
    Image.fromarray(_face(0)).save(path)
    return path


@pytest.fixture
def driving(tmp_path):
    path = tmp_path / "driving.mp4"
    with VideoWriter(path, fps=10) as writer:
        for seed in range(1, 7):
            writer.write(_face(seed, 64))
    return path


def test_edit_image_is_model_edit_and_moving_back_restores(studio, source):
    still = studio.edit_image(source, {})
    moved = studio.edit_image(source, {"d1": 0.8})
    back = studio.edit_image(source, {"d1": 0.0})
    assert np.abs(moved.astype(int) - still).max() > 2  # the slider changes the image
    np.testing.assert_array_equal(back, still)  # and moving it back restores it
    # the same function as model.edit: G(z + D(A + offsets))
    model = studio.animator.model
    image = torch.from_numpy(studio.encode(source).image).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.inference_mode():
        expected = lmtk.apis.animator.to_uint8(model.edit(image, {1: 0.8}))[0]
    assert np.abs(expected.astype(int) - moved).max() <= 1
    # a list of one offset per direction and indices work too
    by_list = studio.edit_image(source, [0.0, 0.8, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(by_list, studio.edit_image(source, {1: 0.8}))


def test_edit_offsets_are_checked(studio, source):
    with pytest.raises(StudioError, match="unknown direction 'smile'"):
        studio.edit_image(source, {"smile": 0.5})
    with pytest.raises(StudioError, match="one offset per direction"):
        studio.edit_image(source, [0.1, 0.2])
    with pytest.raises(StudioError, match="finite"):
        studio.edit_image(source, {"d0": float("nan")})


def test_labels_are_saved_beside_the_checkpoint_and_read_back(studio, checkpoint, tmp_path):
    assert studio.labels() == ["d0", "d1", "d2", "d3", "d4"]
    path = studio.save_labels(["d0", "smile", "", "nod", "d4"])
    assert path == labels_path(checkpoint) and path.parent == checkpoint.parent
    assert json.loads(path.read_text()) == {"smile": 1, "nod": 3}  # analyze_directions.py's format
    again = Studio(checkpoint, tmp_path / "again")
    assert again.labels() == ["d0", "smile", "d2", "nod", "d4"]
    assert again.edits({"smile": 0.5, "3": -0.25}) == {1: 0.5, 3: -0.25}
    with pytest.raises(StudioError, match="'a' is given twice"):
        studio.save_labels(["a", "a", "", "", ""])
    with pytest.raises(StudioError, match="direction 0 cannot be called 'd3'"):
        studio.save_labels(["d3", "", "", "", ""])
    with pytest.raises(StudioError, match="non-numeric"):
        studio.save_labels(["", "7", "", "", ""])
    path.unlink()


def test_analyze_directions_output_names_the_sliders(checkpoint, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "tiny.safetensors").write_bytes(checkpoint.read_bytes())
    (folder / "direction_names.json").write_text(json.dumps({"blink": 2}))  # tools/analyze_directions.py
    assert Studio(folder / "tiny.safetensors", tmp_path / "work").labels()[2] == "blink"


def test_animate_writes_one_frame_per_driving_frame(studio, source, driving):
    path = studio.animate(source, driving, mode="relative", start_frame="auto", side_by_side=True)
    video = open_video(path)
    assert len(video) == 6 and video.size == (32, 96)
    edited = studio.animate(source, driving, offsets={"d1": 0.8})
    plain = studio.animate(source, driving)
    assert (
        np.abs(open_video(edited).get_frames([0]).astype(int) - open_video(plain).get_frames([0])).max() > 2
    )


def test_page_errors(studio, source, driving, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(StudioError, match="not an image"):
        studio.animate(text, driving)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    with pytest.raises(StudioError, match="cannot be read"):
        studio.animate(source, broken)
    long = tmp_path / "long.mp4"
    with VideoWriter(long, fps=2) as writer:
        for seed in range(6):  # 3 s, over the fixture's 2 s limit
            writer.write(_face(seed, 32))
    with pytest.raises(StudioError, match="longer than this studio's limit of 2 s"):
        studio.animate(source, long)
    with pytest.raises(StudioError, match="crop source"):
        studio.animate(source, driving, paste_back=True)
    with pytest.raises(StudioError, match="out of range"):
        studio.animate(source, driving, start_frame=6)
    assert not list(studio.outputs.glob("*.partial*"))


def test_live_streams_each_session_through_the_animator(studio, source):
    frames = [_face(seed, 40) for seed in range(1, 5)]
    results = [studio.live("a", source, frame, smooth=False)[0] for frame in frames]
    expected = list(studio.animator.stream(str(source), frames, smooth=False))
    for result, wanted in zip(results, expected):
        np.testing.assert_array_equal(result, wanted)
    # smoothing (the page's default) filters the motion: the same frames give other results
    smoothed = [studio.live("b", source, frame)[0] for frame in frames]
    assert np.abs(smoothed[-1].astype(int) - results[-1]).max() > 0
    _, stats = studio.live("b", source, frames[0])
    assert stats.frames == 5 and stats.fps > 0 and stats.latency_ms > 0
    assert "frames/s" in stats.text() and "latency" in stats.text()


def test_switching_models(studio, checkpoint, tmp_path):
    other = tmp_path / "models" / "other.safetensors"
    other.parent.mkdir()
    config = {**TINY_LIA, "motion_basis": {**TINY_LIA["motion_basis"], "num_directions": 3}}
    torch.manual_seed(1)
    lmtk.save_model(lmtk.registry.build(config), other, config=config)
    switched = Studio(checkpoint, tmp_path / "w", models_dir=other.parent)
    assert str(other) in switched.checkpoints() and str(checkpoint) in switched.checkpoints()
    switched.load(other)
    info = switched.info()
    assert info["directions (M)"] == 3 and info["size"] == "32 x 32 px" and info["dtype"] == "float32"
    assert switched.labels() == ["d0", "d1", "d2"]
    with pytest.raises((OSError, ValueError)):
        switched.load(tmp_path / "missing.pt")
    assert switched.num_directions == 3  # the current model stays


def test_the_onnxruntime_backend_serves_the_same_frames(checkpoint, studio, source, driving, tmp_path):
    """--backend onnxruntime: the tabs run the exported graphs (made in export_dir, reused by the next
    start) and give the PyTorch studio's frames to float32 rounding; edits still work."""
    pytest.importorskip("onnxruntime")
    folder = tmp_path / "export"
    fast = Studio(checkpoint, tmp_path / "fast", backend="onnxruntime", export_dir=folder)
    assert (folder / "manifest.json").is_file()
    assert (
        fast.info()["backend"] == f"onnxruntime float32 ({folder})" and studio.info()["backend"] == "pytorch"
    )
    frames = [_face(seed, 40) for seed in range(1, 4)]
    for frame in frames:
        got, wanted = (
            fast.live("a", source, frame, smooth=False)[0],
            studio.live("a", source, frame, smooth=False)[0],
        )
        assert np.abs(got.astype(int) - wanted).max() <= 1
    edited = fast.edit_image(source, {"d1": 0.8}).astype(int)
    assert np.abs(edited - studio.edit_image(source, {"d1": 0.8})).max() <= 1
    assert np.abs(edited - fast.edit_image(source, {})).max() > 2
    video = open_video(fast.animate(source, driving, offsets={"d1": 0.8}))
    assert len(video) == 6
    again = Studio(checkpoint, tmp_path / "again", backend="onnxruntime", export_dir=folder)  # reused
    assert again.animator.network.folder == folder
    with pytest.raises(StudioError, match="export folder: the studio needs the model's checkpoint"):
        Studio(folder, tmp_path / "alone", backend="onnxruntime")
