"""Jitter of an animation: the streaming measure equals the array one, and smoothing lowers it."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import SIZE, TINY_LIA, tiny_lia
from tool_scripts import load_tool

import lmtk
from lmtk.apis import Animator
from lmtk.apis.smoothing import OneEuroFilter, frame_change, jitter
from lmtk.evaluation.jitter import RunningJitter, video_jitter

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def animator():
    return Animator(tiny_lia(), batch_size=8)


def test_running_jitter_equals_the_array_measures():
    frames = torch.randn(9, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    running = RunningJitter()
    for frame in frames:
        running.update(frame)
    assert running.jitter == pytest.approx(jitter(frames)) and running.change == pytest.approx(
        frame_change(frames)
    )


def test_smoothing_lowers_the_jitter_of_a_noisy_still_video(animator):
    rng = np.random.default_rng(0)
    still = rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.float64)
    noisy = np.clip(still + rng.normal(0, 12, (30, SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    report = video_jitter(animator, noisy, OneEuroFilter())
    assert report["frames"] == 30
    assert report["smoothed_magnitude_jitter"] < report["magnitude_jitter"] / 3
    assert report["smoothed_output_jitter"] < report["output_jitter"] / 2
    assert report["smoothing_lag_frames"] <= 2
    assert report["smoothing"]["beta"] == OneEuroFilter().beta
    assert "smoothed_output_jitter" not in video_jitter(animator, noisy, None, max_frames=5)


def test_test_tool_reports_jitter(tmp_path, capsys):
    from lmtk.datasets.synthetic import make_synthetic_dataset

    make_synthetic_dataset(
        tmp_path / "synthetic", num_train=0, num_test=2, num_frames=8, size=SIZE, progress=False
    )
    lmtk.save_model(tiny_lia(), tmp_path / "tiny.pt", config=TINY_LIA)
    args = [str(ROOT / "configs/lia/lia_synthetic_m20.py"), str(tmp_path / "tiny.pt"), "--data-root"]
    args += [str(tmp_path / "synthetic"), "--work-dir", str(tmp_path / "work"), "--metrics", "l1", "--quiet"]
    assert load_tool("test").main([*args, "--jitter", "--smooth"]) == 0
    assert "jitter (mean over videos): " in capsys.readouterr().out
    written = json.loads((tmp_path / "work" / "metrics.json").read_text())["jitter"]
    assert len(written["per_video"]) == 2
    assert written["mean"]["smoothed_magnitude_jitter"] < written["mean"]["magnitude_jitter"]
