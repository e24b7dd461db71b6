"""Synthetic dataset on disk (MP4 and PNG layouts), the in-memory dataset, and the command-line tool."""

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

import lmtk.datasets.synthetic  # noqa: F401  (registers the dataset)
from lmtk.datasets.synthetic import (
    KEYPOINT_NAMES,
    MOTION_FACTORS,
    SyntheticFaceVideos,
    make_synthetic_dataset,
    render_video,
    synthetic_dataset_ready,
    video_seed,
)
from lmtk.registry import datasets

REPO = Path(__file__).resolve().parents[3]


def decode(path):
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def test_video_layout(tmp_path):
    manifest = make_synthetic_dataset(
        tmp_path, num_train=3, num_test=1, num_frames=6, size=64, seed=4, clips_per_identity=2, progress=False
    )
    train = sorted(p.name for p in (tmp_path / "train").iterdir())
    assert train == [
        f"id{i:04d}#{c:02d}.{ext}" for i, c in ((0, 0), (0, 1), (1, 0)) for ext in ("json", "mp4")
    ]
    assert sorted(p.name for p in (tmp_path / "test").iterdir()) == ["id0000#00.json", "id0000#00.mp4"]
    assert (tmp_path / "manifest.json").is_file()
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert [e["name"] for e in manifest["splits"]["train"]] == ["id0000#00", "id0000#01", "id0001#00"]

    annotation = json.loads((tmp_path / "train" / "id0000#01.json").read_text())
    assert annotation["keypoint_names"] == list(KEYPOINT_NAMES)
    assert np.array(annotation["keypoints"]).shape == (6, len(KEYPOINT_NAMES), 2)
    assert set(annotation["params"]) == set(MOTION_FACTORS)
    assert all(len(values) == 6 for values in annotation["params"].values())
    assert (
        annotation["fps"] == 25
        and annotation["size"] == 64
        and annotation["seed"] == video_seed(4, "train", 0)
    )

    frames, keypoints, _ = render_video(annotation["seed"], 6, 64, clip=annotation["clip"])
    np.testing.assert_allclose(annotation["keypoints"], keypoints, atol=1e-3)
    decoded = decode(tmp_path / "train" / "id0000#01.mp4")
    assert decoded.shape == (6, 64, 64, 3)
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 4.0  # near-lossless H.264

    # Clips of one identity share the face; the test split has its own people.
    same_person = json.loads((tmp_path / "train" / "id0000#00.json").read_text())
    assert same_person["identity"] == annotation["identity"] and same_person["params"] != annotation["params"]
    other_split = json.loads((tmp_path / "test" / "id0000#00.json").read_text())
    assert other_split["identity"] != annotation["identity"]
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary files left behind

    assert synthetic_dataset_ready(tmp_path)
    assert synthetic_dataset_ready(tmp_path, size=64, layout="video")
    assert synthetic_dataset_ready(tmp_path, size=64, progress=False)  # how it was shown changes no file
    assert not synthetic_dataset_ready(tmp_path, size=128)
    (tmp_path / "train" / "id0001#00.mp4").unlink()
    assert not synthetic_dataset_ready(tmp_path)


def keyframes(path) -> list[int]:
    """The positions (in decoding order) of the keyframes of a video file's first video stream."""
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]  # the flush packet is empty
    return [i for i, packet in enumerate(packets) if packet.is_keyframe]


def test_keyframe_interval_caps_the_distance_between_keyframes(tmp_path):
    from lmtk.datasets.synthetic.writer import write_video

    frames, _, _ = render_video(video_seed(0, "train", 0), 40, 64)
    write_video(tmp_path / "default.mp4", frames)
    write_video(tmp_path / "short.mp4", frames, keyframe_interval=8)
    assert keyframes(tmp_path / "default.mp4") == [0]  # x264's default interval: 250
    positions = keyframes(tmp_path / "short.mp4")
    assert positions[0] == 0 and max(b - a for a, b in zip(positions, positions[1:] + [40])) <= 8
    np.testing.assert_array_equal(decode(tmp_path / "short.mp4").shape, frames.shape)


def test_frames_layout_is_lossless(tmp_path):
    make_synthetic_dataset(
        tmp_path, num_train=1, num_test=1, num_frames=4, size=48, layout="frames", progress=False
    )
    for split in ("train", "test"):
        folder = tmp_path / split / "id0000#00"
        names = sorted(p.name for p in folder.iterdir())
        assert names == [f"{i:05d}.png" for i in range(4)]
        annotation = json.loads((tmp_path / split / "id0000#00.json").read_text())
        frames, _, _ = render_video(annotation["seed"], 4, 48)
        written = np.stack([np.asarray(Image.open(folder / name).convert("RGB")) for name in names])
        assert np.array_equal(written, frames)
    assert synthetic_dataset_ready(tmp_path, layout="frames")


def test_partial_dataset_is_not_ready(tmp_path):
    assert not synthetic_dataset_ready(tmp_path)
    make_synthetic_dataset(tmp_path, num_train=1, num_test=0, num_frames=2, size=32, progress=False)
    assert synthetic_dataset_ready(tmp_path)
    with pytest.raises(
        ValueError, match="size"
    ):  # a failed rewrite must not leave a complete-looking dataset
        make_synthetic_dataset(tmp_path, num_train=1, num_test=0, num_frames=2, size=300, progress=False)
    assert synthetic_dataset_ready(tmp_path)  # bad arguments are rejected before anything is touched
    (tmp_path / "manifest.json").write_text("{not json")
    assert not synthetic_dataset_ready(tmp_path)
    with pytest.raises(ValueError, match="even size"):
        make_synthetic_dataset(tmp_path, num_train=1, num_frames=2, size=33, layout="video", progress=False)


def test_rewrite_removes_clips_of_the_earlier_run(tmp_path):
    make_synthetic_dataset(tmp_path, num_train=2, num_test=1, num_frames=2, size=32, progress=False)
    (tmp_path / "train" / "notes.txt").write_text("not ours")
    make_synthetic_dataset(
        tmp_path, num_train=1, num_test=1, num_frames=2, size=32, layout="frames", progress=False
    )
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [
        "id0000#00",
        "id0000#00.json",
        "notes.txt",
    ]
    assert synthetic_dataset_ready(tmp_path, layout="frames")


def test_in_memory_dataset():
    assert datasets.get("lmtk.SyntheticFaceVideos.v1") is SyntheticFaceVideos
    dataset = SyntheticFaceVideos(num_videos=3, num_frames=6, size=32, seed=4, repeats=2)
    assert len(dataset) == 6
    item = dataset[4]
    for key in ("source", "driving"):
        assert item[key].shape == (3, 32, 32) and item[key].dtype == torch.float32
        assert item[key].min() >= -1.0 and item[key].max() <= 1.0 and item[key].std() > 0.1
    source, driving = item["frame_indices"]
    assert source != driving and 0 <= min(source, driving) and max(source, driving) < 6
    assert item["video"] == "id0001#00"
    assert item["source_keypoints"].shape == (len(KEYPOINT_NAMES), 2)
    assert item["source_keypoints"].dtype == torch.float32

    # Video i is clip id<i>#00 of the written train split; the item is fixed by (seed, index).
    frames, keypoints, _ = render_video(video_seed(4, "train", 1), 6, 32)
    expected = torch.from_numpy(frames[source]).permute(2, 0, 1).float() / 127.5 - 1.0
    assert (item["source"] - expected).abs().max() < 1e-6
    assert np.array_equal(item["driving_keypoints"].numpy(), keypoints[driving])
    again = SyntheticFaceVideos(num_videos=3, num_frames=6, size=32, seed=4, repeats=2)[4]
    assert again["frame_indices"] == item["frame_indices"] and torch.equal(again["driving"], item["driving"])
    assert dataset[1]["frame_indices"] != item["frame_indices"] or dataset[1]["video"] == item["video"]
    with pytest.raises(IndexError):
        dataset[6]
    with pytest.raises(ValueError):
        SyntheticFaceVideos(num_frames=1)


def start_tool(*args):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, str(REPO / "tools" / "make_synthetic_dataset.py"), *args]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )


def test_tool_end_to_end(tmp_path):
    root = tmp_path / "synthetic"
    # Both runs start at once: most of their time is importing torch.
    good = start_tool(
        "--output", str(root), "--num-train", "2", "--num-test", "1", "--frames", "3", "--size", "32"
    )
    bad = start_tool("--output", str(tmp_path / "bad"), "--size", "8")
    _, good_stderr = good.communicate(timeout=120)
    _, bad_stderr = bad.communicate(timeout=120)

    assert good.returncode == 0, good_stderr
    assert synthetic_dataset_ready(root, size=32, num_frames=3)
    assert len(decode(root / "train" / "id0001#00.mp4")) == 3

    assert bad.returncode != 0
    assert "Traceback" not in bad_stderr
    assert len(bad_stderr.strip().splitlines()) == 1 and "size" in bad_stderr
    assert not (tmp_path / "bad" / "manifest.json").exists()
