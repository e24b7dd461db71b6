"""tools/benchmark.py end to end on a tiny config, on the CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tool_scripts import load_tool

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model.size=32", "model.latent_dim=32", "model.channel_base=256", "model.max_channels=16"]


def _run(tool: str, *args, timeout: int = 300):
    # one thread: a 32 px model gains nothing from more, and the test cores are shared
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / tool), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_animate_and_train_with_reference(tmp_path):
    out = tmp_path / "report.json"
    result = _run(
        "benchmark.py", ROOT / "configs/lia/lia_synthetic_m20.py", "--task", "all", "--device", "cpu",
        "--frames", 8, "--iters", 2, "--batch-size", 4, "--train-batch-size", 2, "--reference",
        "--reference-frames", 2, "--threads", 1, "--profile", 4, "--json", out, "--cfg-options", *TINY,
    )  # fmt: skip
    assert "animation vs reference" in result.stdout
    assert result.stdout.count("where one iteration of") == 2  # the animation and the training step
    report = json.loads(out.read_text())
    assert {"environment", "settings", "results", "reference", "speedup_vs_reference", "notes"} <= set(report)
    env = report["environment"]
    assert {"device_name", "torch", "cuda", "python", "torch_threads"} <= set(env)
    assert env["torch_threads"] == 1
    reference, animation, training = report["results"]
    assert reference["reference"] and reference["batch_size"] == 1 and len(reference["throughput_runs"]) == 2
    assert animation["task"] == "animate" and animation["unit"] == "frames/s" and animation["frames"] == 8
    assert training["task"] == "train" and training["unit"] == "images/s" and training["batch_size"] == 2
    for record in report["results"]:
        assert record["throughput"] > 0 and record["peak_memory_bytes"] > 0
        assert {"dtype", "channels_last", "blur", "compile", "ms_per_iter_median"} <= set(record)
    assert report["speedup_vs_reference"] == pytest.approx(animation["throughput"] / reference["throughput"])
    assert "top_operations" not in reference
    for record in (animation, training):
        operations = record["top_operations"]
        assert 1 <= len(operations) <= 4
        assert sum(op["share"] for op in operations) <= 1 + 1e-9
        assert [op["ms"] for op in operations] == sorted((op["ms"] for op in operations), reverse=True)
        assert any("conv" in op["name"] for op in operations), operations  # convolutions dominate


def test_fast_paths_from_config_and_command_line(tmp_path):
    config = tmp_path / "tiny.py"
    config.write_text(
        f"_base_ = [{str(ROOT / 'configs/lia/lia_synthetic_m20.py')!r}]\n"
        "fast_paths = dict(channels_last=True, blur='separable')\n"
    )
    out = tmp_path / "report.json"
    _run(
        "benchmark.py", config, "--device", "cpu", "--frames", 2, "--iters", 1, "--batch-size", 2,
        "--dtype", "bfloat16", "--threads", 1, "--json", out, "--cfg-options", *TINY,
    )  # fmt: skip
    (record,) = json.loads(out.read_text())["results"]
    assert (record["dtype"], record["channels_last"], record["blur"]) == ("bfloat16", True, "separable")
    assert "bfloat16 + channels_last + blur=separable" in record["name"]


def test_an_option_that_changes_nothing_is_refused(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools/benchmark.py"), ROOT / "configs/lia/lia_synthetic_m20.py",
         "--device", "cpu", "--freeze", "--cfg-options", *TINY],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1]
        == "error: --freeze only acts on compiled graphs: add --compile"
    )


def test_a_small_checkpoint_trains_with_the_loss_it_was_made_with(tmp_path):
    import lmtk
    from lmtk.config_file import read_config
    from lmtk.registry import build

    cfg = read_config(ROOT / "configs/lia/lia_synthetic_m20.py")
    cfg.model.size, cfg.model.latent_dim = 32, 32
    cfg.model.channel_base, cfg.model.max_channels = 256, 16
    lmtk.save_model(build(cfg.model), tmp_path / "small.pth", cfg.model.to_dict())
    # the default (paper) loss's VGG19 pyramid does not fit 32 px: the stored L1-only loss must be used
    out = tmp_path / "train.json"
    _run("benchmark.py", tmp_path / "small.pth", "--device", "cpu", "--task", "train", "--batch-size", "2",
         "--iters", "1", "--warmup", "0", "--json", out)  # fmt: skip
    (record,) = json.loads(out.read_text())["results"]
    assert record["task"] == "train" and record["throughput"] > 0


@pytest.mark.parametrize(
    "options, message",
    [
        (["--task", "all", "--compile", "--freeze"], "--freeze bakes weights into inference graphs"),
        (["--dtype", "float16", "--device", "cpu"], "--dtype float16 is a CUDA path"),
        (["--json", "."], "argument --json: . is a folder"),
        (["--json", "missing/report.json"], "argument --json: the folder missing does not exist"),
        (["--warmup", "-1"], "argument --warmup: expected an integer >= 0, got -1"),
        (
            ["--task", "data", "--dtype", "bfloat16", "--blur", "folded", "--reference"],
            "--task data times the data loader alone: --dtype, --blur, --reference",
        ),
        (
            ["--task", "data", "--batch-size", "8", "--iters", "2", "--profile", "5"],
            "--task data times the data loader alone: --batch-size, --iters, --profile change(s) nothing",
        ),
        (["--workers", "2"], "--workers is for --task data"),
        (["--task", "train", "--batches", "5"], "--batches is for --task data"),
    ],
)
def test_bad_options_are_refused_before_the_run(options, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_tool("benchmark").parse_args([str(ROOT / "configs/lia/lia_synthetic_m20.py"), *options])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: {message}")


def test_data_task_times_the_config_loader_on_the_demo_clips(shared_data, tmp_path, capsys):
    tool = load_tool("benchmark")
    out = tmp_path / "data.json"
    config = ROOT / "configs/lia/lia_vox_m20.py"
    options = ["--cfg-options", f"train_dataloader.dataset.data_root={shared_data / 'vox'}"]
    report = tool.main([str(config), "--task", "data", "--device", "cpu", "--workers", "0", "--batches", "2",
                        "--train-batch-size", "2", "--json", str(out), *options])  # fmt: skip
    (record,) = report["results"]
    assert record["task"] == "data" and record["batch_size"] == 2 and record["num_workers"] == 0
    assert record["throughput"] > 0 and "videos=2" in record["dataset"]  # the two vox demo clips
    assert json.loads(out.read_text())["results"][0]["throughput"] == record["throughput"]
    assert "data loading (VideoPairDataset, 0 workers)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # a checkpoint has no data loader
        tool.main([str(tmp_path / "model.pth"), "--task", "data", "--device", "cpu"])
    assert exit_info.value.code == 2
    assert "is not a config (.py)" in capsys.readouterr().err


def test_a_liax_config_benchmarks_animation_and_training(tmp_path):
    out = tmp_path / "report.json"
    _run(
        "benchmark.py", ROOT / "configs/liax/liax_synthetic.py", "--task", "all", "--device", "cpu",
        "--frames", 4, "--iters", 1, "--batch-size", 2, "--train-batch-size", 2, "--threads", 1,
        "--json", out, "--cfg-options", *TINY,
    )  # fmt: skip
    animation, training = json.loads(out.read_text())["results"]
    assert animation["task"] == "animate" and training["task"] == "train"
    assert animation["throughput"] > 0 and training["throughput"] > 0
