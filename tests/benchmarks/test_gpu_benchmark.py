"""benchmarks/gpu_benchmark.py end to end at a tiny size on the CPU (the script itself, not a GPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_script_runs_on_cpu_at_a_tiny_size(tmp_path):
    # one thread: a 32 px model gains nothing from more, and the test cores are shared
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    options = [
        "--device", "cpu", "--tiny", "--no-compile", "--out", tmp_path, "--anim-batch", 2, "--train-batch", 2,
        "--frames", 2, "--iters", 1, "--train-iters", 1, "--reference-frames", 2,
    ]  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_benchmark.py"), *map(str, options)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_benchmark.json").read_text())
    assert not report["errors"], report["errors"]
    assert "reference (demo loop" in result.stdout
    assert {"bf16_vs_fp32", "fp32_blur_folded_vs_fp32", "fp32_blur_separable_vs_fp32"} <= set(
        report["numerics"]
    )
    assert report["numerics"]["fp32_blur_folded_vs_fp32"] < 1e-4
    assert report["numerics"]["fp32_blur_separable_vs_fp32"] < 1e-4
    trainings = [r for r in report["results"] if r["unit"] == "images/s"]
    # float32, bf16 + channels_last, + the folded blur (compiled: not here)
    assert [(r["dtype"], r["blur"]) for r in trainings] == [
        ("float32", "depthwise"),
        ("bfloat16", "depthwise"),
        ("bfloat16", "folded"),
    ]
    assert all(r["top_operations"] for r in report["results"] if not r.get("reference"))
