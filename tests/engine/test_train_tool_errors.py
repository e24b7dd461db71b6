"""tools/train.py: a user's mistake is one ``error:`` line and a non-zero exit; a bug keeps its traceback."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
from training_helpers import REPO, tiny_options

CONFIG = str(REPO / "configs/lia/lia_vox_m20.py")


@pytest.fixture(scope="module")
def train_tool():
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import train
    finally:
        sys.path.pop(0)
    return train


def options(data_root, work_dir, **overrides) -> list[str]:
    # a name of its own: mmengine reuses a logger by name, and the last test's captured stream is closed
    name = {"experiment_name": f"{work_dir.parent.name}_{work_dir.name}"}
    values = {**tiny_options(data_root, work_dir, max_iters=2), **name, **overrides}
    return ["--cfg-options", *(f"{k}={v}".replace(" ", "") for k, v in values.items())]


def run(train_tool, capsys, *argv) -> str:
    """The tool's one-line error (it must stop with exit status 1)."""
    assert train_tool.main([CONFIG, *map(str, argv)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), err[-2000:]
    return lines[-1]


def test_missing_data_root(train_tool, capsys, tmp_path):
    line = run(train_tool, capsys, *options(tmp_path / "nowhere", tmp_path / "work"))
    assert "not found" in line and "nowhere" in line


def test_empty_data_root(train_tool, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    line = run(train_tool, capsys, *options(tmp_path / "empty", tmp_path / "work"))
    assert "No videos found" in line


def test_misspelt_dataset_option(train_tool, capsys, video_root, tmp_path):
    argv = options(video_root, tmp_path, **{"train_dataloader.dataset.frame_cahce_mb": 8})
    line = run(train_tool, capsys, *argv)
    assert "frame_cahce_mb" in line


def test_dataset_size_differs_from_the_model_size(train_tool, capsys, video_root, tmp_path):
    line = run(train_tool, capsys, *options(video_root, tmp_path, **{"train_dataloader.dataset.size": 48}))
    assert "48" in line and "32" in line and "model.size" in line


def test_a_total_batch_that_does_not_divide_over_the_processes(
    train_tool, capsys, video_root, tmp_path, monkeypatch
):
    monkeypatch.setattr(
        "lmtk.engine.runner.get_world_size", lambda: 3
    )  # as under torchrun --nproc_per_node 3
    line = run(train_tool, capsys, *options(video_root, tmp_path))
    assert "batch_size=2 is the total batch" in line and "does not divide over 3 processes" in line
    assert not list(tmp_path.rglob("*.pth"))


def test_optimizer_setting_of_the_wrong_type(train_tool, capsys, video_root, tmp_path):
    argv = options(video_root, tmp_path, **{"optim_wrapper.generator.optimizer.lr": "2e-3x"})
    line = run(train_tool, capsys, *argv)
    assert "optim_wrapper.generator.optimizer.lr must be a number" in line and "2e-3x" in line


@pytest.mark.parametrize("value", ["abc", "0", "-5"])
def test_a_run_length_that_is_not_a_positive_number_names_the_option(
    train_tool, capsys, video_root, tmp_path, value
):
    # "abc" failed deep in mmengine with int()'s message; 0 and -5 trained nothing and exited 0
    work_dir = tmp_path / "work"
    line = run(train_tool, capsys, *options(video_root, work_dir, **{"train_cfg.max_iters": value}))
    assert line.startswith("error: train_cfg.max_iters must be a positive whole number") and value in line
    assert not work_dir.exists()


def test_a_failed_start_prints_its_error_alone_and_leaves_nothing(train_tool, capsys, tmp_path):
    # the error came after ~250 lines of environment and config dump, and the start left a timestamp
    # folder (log, config) and a copy of the config in the work dir
    work_dir = tmp_path / "runs" / "first"
    assert train_tool.main([CONFIG, *options(tmp_path / "nowhere", work_dir)]) == 1  # fails in the runner
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines()[-1].startswith("error: Dataset folder not found")
    assert list(tmp_path.iterdir()) == []
    # in a work dir that holds files already, those stay as they were (a copy of the config too)
    work_dir.mkdir(parents=True)
    (work_dir / "lia_vox_m20.py").write_text("# an earlier run's config\n")
    (work_dir / "notes.txt").write_text("mine\n")
    assert train_tool.main([CONFIG, *options(tmp_path / "nowhere", work_dir)]) == 1
    assert capsys.readouterr().out == ""
    assert sorted(p.name for p in work_dir.iterdir()) == ["lia_vox_m20.py", "notes.txt"]
    assert (work_dir / "lia_vox_m20.py").read_text() == "# an earlier run's config\n"


def test_a_run_after_a_failed_start_in_the_same_process_logs_into_its_own_folder(
    train_tool, capsys, video_root, tmp_path
):
    # mmengine handed the second runner the first one's visualizer, which wrote into the (removed)
    # log folder of the failed start
    assert train_tool.main([CONFIG, *options(tmp_path / "nowhere", tmp_path / "failed")]) == 1
    assert train_tool.main([CONFIG, *options(video_root, tmp_path / "run")]) == 0
    assert "Config:" in capsys.readouterr().out  # shown once training started
    (log_dir,) = [path for path in (tmp_path / "run").iterdir() if path.is_dir() and path.name[0].isdigit()]
    assert (log_dir / "vis_data" / "config.py").is_file() and not (tmp_path / "failed").exists()


def test_missing_checkpoint_to_resume(train_tool, capsys, video_root, tmp_path):
    line = run(train_tool, capsys, "--resume", tmp_path / "missing.pth", *options(video_root, tmp_path))
    assert "missing.pth" in line


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_resuming_from_weights_only_names_load_from(train_tool, capsys, video_root, tmp_path, suffix):
    """A file from save_model holds no iteration or optimizer state: resuming from it cannot work, and
    the error says how to start a run from those weights instead."""
    from tiny_models import TINY_LIA, tiny_lia

    from lmtk.apis import save_model

    weights = tmp_path / f"weights{suffix}"
    save_model(tiny_lia(), weights, config=TINY_LIA)
    work_dir = tmp_path / "run"
    line = run(
        train_tool, capsys, "--resume", weights, "--work-dir", work_dir, *options(video_root, work_dir)
    )
    assert "weights only" in line and f"load_from={weights}" in line
    assert not any(work_dir.glob("*.pth"))


def test_auto_resume_without_a_checkpoint(train_tool, capsys, video_root, tmp_path):
    work_dir = tmp_path / "fresh"
    line = run(train_tool, capsys, "--resume", "--work-dir", work_dir, *options(video_root, tmp_path))
    assert str(work_dir) in line and "--work-dir" in line
    assert not any(work_dir.glob("*.pth"))  # it did not train from scratch instead


def test_a_bug_during_training_keeps_its_traceback(train_tool, video_root, tmp_path, monkeypatch):
    from lmtk.models.lia import LIA

    def broken(self, data, optim_wrapper):
        raise ValueError("a bug in the training step")

    monkeypatch.setattr(LIA, "train_step", broken)
    with pytest.raises(ValueError, match="a bug in the training step"):
        train_tool.main([CONFIG, *options(video_root, tmp_path)])


def interrupt_at(monkeypatch, iteration: int, signal_number: int | None = None) -> None:
    """Make the training step ``iteration`` (1-based) be interrupted: Ctrl-C, or a real signal."""
    from lmtk.models.lia import LIA

    step, calls = LIA.train_step, []

    def interrupted(self, data, optim_wrapper):
        calls.append(1)
        if len(calls) == iteration:
            if signal_number is None:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal_number)
        return step(self, data, optim_wrapper)

    monkeypatch.setattr(LIA, "train_step", interrupted)


def test_an_interrupt_before_any_checkpoint_says_nothing_is_kept(
    train_tool, capsys, video_root, tmp_path, monkeypatch
):
    interrupt_at(monkeypatch, 1)
    assert train_tool.main([CONFIG, *options(video_root, tmp_path)]) == 130
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        line
        == "error: interrupted during iteration 1; no checkpoint was written yet, so nothing of this run is kept"
    )


def test_sigterm_is_an_interrupt_naming_the_checkpoint_to_resume(
    train_tool, capsys, video_root, tmp_path, monkeypatch
):
    interrupt_at(monkeypatch, 3, signal.SIGTERM)  # after the checkpoint of iteration 2
    previous = signal.getsignal(signal.SIGTERM)
    assert train_tool.main([CONFIG, *options(video_root, tmp_path, **{"train_cfg.max_iters": 4})]) == 143
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is the tool's only while it runs
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == (
        f"error: terminated during iteration 3; the newest checkpoint is {tmp_path / 'iter_2.pth'}: "
        "continue from it with --resume"
    )
    assert not list(tmp_path.glob(".*")), "the lock and partial files are gone"


def test_a_work_dir_holding_a_run_needs_resume_or_overwrite(train_tool, capsys, video_root, tmp_path):
    assert train_tool.main([CONFIG, *options(video_root, tmp_path)]) == 0
    first = (tmp_path / "iter_2.pth").read_bytes()
    line = run(train_tool, capsys, *options(video_root, tmp_path))
    assert "already holds a run (its newest checkpoint: iter_2.pth)" in line and "--overwrite" in line
    assert (tmp_path / "iter_2.pth").read_bytes() == first
    # --resume also takes the run's folder, as the other tools do
    more = options(video_root, tmp_path, **{"train_cfg.max_iters": 3})
    assert train_tool.main([CONFIG, "--resume", str(tmp_path), *more]) == 0
    assert (tmp_path / "last_checkpoint").read_text().strip().endswith("iter_3.pth")
    # an --overwrite start that fails (no data) leaves the run as it was: --resume still continues it
    line = run(train_tool, capsys, "--overwrite", *options(tmp_path / "nowhere", tmp_path))
    assert "nowhere" in line
    assert (tmp_path / "last_checkpoint").read_text().strip().endswith("iter_3.pth")
    assert train_tool.main([CONFIG, "--overwrite", *options(video_root, tmp_path)]) == 0
    assert (tmp_path / "last_checkpoint").read_text().strip().endswith("iter_2.pth")
    assert (tmp_path / "iter_2.pth").read_bytes() != first  # trained again


def test_a_live_run_holds_its_work_dir(train_tool, capsys, video_root, tmp_path):
    from lmtk.engine.work_dir_lock import LOCK_NAME

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = tmp_path / LOCK_NAME
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "started": 0}))
        line = run(train_tool, capsys, *options(video_root, tmp_path))
        assert f"another training run (process {holder.pid}" in line and str(lock) in line
    finally:
        holder.kill()
        holder.wait()
    # its process has ended: the lock is stale, taken over, and the partial checkpoint it left removed
    (tmp_path / ".iter_2.pth.partial").write_bytes(b"cut short")
    assert train_tool.main([CONFIG, *options(video_root, tmp_path)]) == 0
    assert not lock.exists() and not (tmp_path / ".iter_2.pth.partial").exists()


@pytest.mark.parametrize("problem", ["a file", "empty last_checkpoint", "empty checkpoint"])
def test_work_dir_and_checkpoint_problems_are_one_line(train_tool, capsys, video_root, tmp_path, problem):
    work_dir = tmp_path / "run"
    argv = options(video_root, work_dir)
    if problem == "a file":
        work_dir.write_text("")
        assert f"the work dir {work_dir} is a file" in run(train_tool, capsys, *argv)
    elif problem == "empty last_checkpoint":
        work_dir.mkdir()
        (work_dir / "last_checkpoint").write_text("")
        assert "last_checkpoint is empty" in run(train_tool, capsys, "--resume", *argv)
    else:
        work_dir.mkdir()
        (work_dir / "iter_2.pth").write_bytes(b"")
        line = run(train_tool, capsys, "--resume", str(work_dir / "iter_2.pth"), *argv)
        assert f"cannot read checkpoint {work_dir / 'iter_2.pth'}: the file is empty" in line


def test_data_that_fails_to_read_while_training_is_one_line(train_tool, capsys, tmp_path):
    # frame folders whose images are damaged: the dataset's scan counts their frames, reading them fails
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for t in range(3):
            (tmp_path / "data" / name / f"{t}.png").write_bytes(b"not a png")
    work_dir = tmp_path / "work"
    argv = options(tmp_path / "data", work_dir, **{"train_dataloader.num_workers": 1})
    line = run(train_tool, capsys, *argv)  # the error comes from a worker process, its traceback dropped
    assert line.startswith(f"error: Every video in {tmp_path / 'data'} failed to read"), line
    assert "read failed" in line and line.endswith(
        "no checkpoint was written yet, so nothing of this run is kept"
    )
