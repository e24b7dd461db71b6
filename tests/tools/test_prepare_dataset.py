"""tools/prepare_dataset.py end to end: a real face inside a larger moving scene, a video without a face."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from tool_scripts import load_tool

from lmtk.datasets.synthetic.writer import write_video
from lmtk.datasets.video_reader import find_videos, open_video
from lmtk.preprocessing.prepare import PrepareOptions

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "prepare_dataset.py"
NUM_FRAMES = 40
SCENE = (480, 640)  # H, W
FACE_AT, FACE_SIDE = (300, 150), 200  # top-left (x, y) and side of the pasted 256 px face clip


def _run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, env=env, timeout=300
    )


def _scrolling_noise(num_frames: int, seed: int) -> np.ndarray:
    """Blocky noise scrolling left 4 px a frame: a background that moves and holds no face."""
    height, width = SCENE
    rng = np.random.default_rng(seed)
    wide = rng.integers(0, 256, (height // 8, (width + 4 * num_frames) // 8, 3), np.uint8)
    wide = cv2.resize(wide, (width + 4 * num_frames, height), interpolation=cv2.INTER_NEAREST)
    return np.stack([wide[:, 4 * t : 4 * t + width] for t in range(num_frames)])


@pytest.fixture(scope="module")
def detector():
    pytest.importorskip("dlib", reason="needs dlib: pip install dlib-bin face-recognition-models")
    from lmtk.preprocessing.face_detection import FaceDetector

    return FaceDetector(upsample=1)  # finds the ~60 px faces of 128 px clips


@pytest.fixture(scope="module")
def prepared(shared_data, detector, tmp_path_factory):
    """One run over a folder with a person video and a noise-only video (two workers)."""
    inputs = tmp_path_factory.mktemp("footage")
    face = open_video(shared_data / "vox" / "driving1.mp4").get_frames(range(NUM_FRAMES))
    scene = _scrolling_noise(NUM_FRAMES, seed=0)
    (x, y), side = FACE_AT, FACE_SIDE
    for t in range(NUM_FRAMES):
        scene[t, y : y + side, x : x + side] = cv2.resize(face[t], (side, side), interpolation=cv2.INTER_AREA)
    write_video(inputs / "person.mp4", scene, fps=10)
    write_video(inputs / "noise.mp4", _scrolling_noise(NUM_FRAMES, seed=1), fps=10)
    output = tmp_path_factory.mktemp("dataset")
    result = _run("--input", inputs, "--output", output, "--size", 128, "--min-frames", 16, "--workers", 2)
    return result, output


def test_face_clips_are_centred(prepared, detector):
    result, output = prepared
    assert result.returncode == 0, result.stderr
    manifest = json.loads((output / "manifest.json").read_text())
    clips = [clip for clip in manifest["clips"] if clip["source"].endswith("person.mp4")]
    assert clips, manifest
    found, centers = 0, []
    total = 0
    for clip in clips:
        assert clip["name"].startswith("person#") and clip["split"] in ("train", "test")
        assert clip["num_frames"] == clip["end_frame"] - clip["start_frame"] >= 16
        assert clip["end_time"] == pytest.approx(clip["end_frame"] / 10, abs=1e-3)
        x0, y0, x1, y1 = clip["box"]
        assert x1 - x0 == pytest.approx(y1 - y0, abs=0.02)
        # the box holds the pasted face and is in source pixels
        assert x0 < FACE_AT[0] + 40 and x1 > FACE_AT[0] + FACE_SIDE - 40 and y0 < FACE_AT[1] + 40
        path = output / clip["path"]
        assert path.parent.name == clip["split"] and path in find_videos(output / clip["split"])
        frames = open_video(path).get_frames(range(clip["num_frames"]))
        assert frames.shape[1:] == (128, 128, 3)
        # a keyframe at least every 8 frames (the default), so random frames are cheap to read
        with av.open(str(path)) as container:
            flags = [packet.is_keyframe for packet in container.demux(video=0) if packet.size]
        assert len(flags) == clip["num_frames"] and flags[0]
        assert all(any(flags[i : i + 8]) for i in range(len(flags) - 7)), flags
        for frame in frames:
            total += 1
            faces = detector(frame)
            if faces:
                found += 1
                centers.append(faces[0].center)
    assert found >= 0.9 * total
    cx, cy = np.mean(centers, axis=0) / 128
    assert abs(cx - 0.5) < 0.10 and abs(cy - 0.5) < 0.15


def test_video_without_a_face_is_reported(prepared):
    result, output = prepared
    assert result.returncode == 0 and "Traceback" not in result.stderr
    manifest = json.loads((output / "manifest.json").read_text())
    assert not [clip for clip in manifest["clips"] if "noise" in clip["name"]]
    (skipped,) = manifest["skipped"]
    assert skipped["source"].endswith("noise.mp4") and "no face" in skipped["reason"]
    report = (output / "report.txt").read_text()
    assert "noise.mp4: no face" in report
    assert not list(output.glob("*/noise#*"))
    names = {clip["name"] for clip in manifest["clips"]}
    assert names == set(manifest["splits"]["train"]) | set(manifest["splits"]["test"])


def test_frame_folder_layout_reads_as_a_dataset(shared_data, detector, tmp_path):
    from lmtk.datasets.video_pair import VideoPairDataset
    from lmtk.preprocessing.prepare import prepare_dataset

    # the demo clip itself: its face fills the frame, so the box reaches past the edges (padding)
    frames = open_video(shared_data / "vox" / "driving1.mp4").get_frames(range(24))
    write_video(tmp_path / "talk.mp4", frames, fps=10)
    manifest = prepare_dataset(
        [tmp_path / "talk.mp4"],
        tmp_path / "data",
        size=48,
        layout="frames",
        min_frames=16,
        detect_every=8,
        split=1.0,
        progress=False,
    )
    (clip,) = manifest["clips"]
    assert clip["name"] == "talk#000" and clip["split"] == "train" and clip["num_frames"] == 24
    folder = tmp_path / "data" / "train" / "talk#000"
    assert sorted(p.name for p in folder.iterdir())[:2] == ["00000.png", "00001.png"]
    assert clip["box"][0] < 0 and clip["box"][2] > 256  # wider than the frame: padded
    dataset = VideoPairDataset(tmp_path / "data", split="train", size=48)
    item = dataset[0]
    assert item["source"].shape == (3, 48, 48)


def test_missing_input_is_one_error_line(tmp_path):
    result = _run("--input", tmp_path / "nowhere", "--output", tmp_path / "out")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "nowhere" in lines[0]
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_bad_options_are_one_error_line(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import prepare_dataset as tool
    finally:
        sys.path.remove(str(ROOT / "tools"))
    (tmp_path / "in").mkdir()
    assert (
        tool.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--size", "127"]) == 2
    )
    assert tool.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 2  # no videos
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("error:") for line in errors)
    assert "even size" in errors[0] and "no videos" in errors[1]
    assert (
        tool.main(
            ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--keyframe-interval", "0"]
        )
        == 2
    )
    assert "keyframe_interval must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        tool.parse_args(["--input", str(tmp_path / "in"), "--output", "x", "--workers", "0"])
    assert exit_info.value.code == 2
    (tmp_path / "file").write_text("")
    for output in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(SystemExit) as exit_info:
            tool.parse_args(["--input", str(tmp_path / "in"), "--output", str(output)])
        assert exit_info.value.code == 2
        assert f"{tmp_path / 'file'} is a file" in capsys.readouterr().err


def test_the_tool_defaults_are_those_of_prepare_options(tmp_path):
    # the tool parses its options before importing lmtk (a quick --help), so it repeats the defaults
    argv = ["--input", str(tmp_path), "--output", str(tmp_path / "out")]
    args = vars(load_tool("prepare_dataset").parse_args(argv))
    defaults = {field.name: field.default for field in dataclasses.fields(PrepareOptions)}
    shared = sorted(set(defaults) & set(args))
    assert len(shared) >= 12, shared
    assert {name: args[name] for name in shared} == {name: defaults[name] for name in shared}
