"""Fixtures for training tests."""

from pathlib import Path

import pytest
from training_helpers import write_video


@pytest.fixture(scope="session")
def video_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    (root / "train").mkdir()
    for i in range(4):
        write_video(root / "train" / f"id{i:02d}#clip.mp4", num_frames=12, size=32, seed=i)
    return root
