"""End to end: the synthetic quickstart config learns motion, not just a copy of its source.

The slowest test of the suite (a few minutes on 2 CPU cores): train ``lia_synthetic_m20.py`` for a
short fixed schedule with a fixed seed, then reconstruct held-out synthetic videos from their first
frame (absolute transfer, every frame as driving). A model that copies its source scores exactly the
"repeat the source frame" L1, so the bound below can only be met by modelling the motion.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lmtk
from lmtk.datasets.video_reader import find_videos
from lmtk.evaluation.reconstruction import reconstruct_video

REPO = Path(__file__).resolve().parents[1]
ITERATIONS = 600
DATASET = "train_dataloader.dataset"


@pytest.mark.slow
def test_synthetic_quickstart_beats_repeating_the_source(tmp_path):
    data_root, work_dir = tmp_path / "synthetic", tmp_path / "work"
    options = {
        "train_cfg.max_iters": ITERATIONS,
        "randomness.seed": 0,
        f"{DATASET}.data_root": data_root,
        f"{DATASET}.generate.num_train": 48,
        f"{DATASET}.generate.num_test": 4,
        "train_dataloader.num_workers": 0,
        "train_dataloader.persistent_workers": False,
        "default_hooks.checkpoint.interval": ITERATIONS,
    }
    command = [sys.executable, str(REPO / "tools/train.py"), str(REPO / "configs/lia/lia_synthetic_m20.py")]
    command += ["--work-dir", str(work_dir), "--cfg-options", *(f"{k}={v}" for k, v in options.items())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]

    model = lmtk.load_model((work_dir / "last_checkpoint").read_text().strip())
    videos = find_videos(data_root / "test")
    assert len(videos) == 4
    results = [reconstruct_video(model, video)[0] for video in videos]
    l1 = np.mean([r["l1"] for r in results])
    repeat_source = np.mean([r["l1_repeat_source"] for r in results])
    print(f"reconstruction L1 {l1:.4f}, repeat-source L1 {repeat_source:.4f}, ratio {l1 / repeat_source:.3f}")
    assert repeat_source > 0.005, "the held-out videos hardly move; the comparison would mean nothing"
    assert l1 < 0.7 * repeat_source
