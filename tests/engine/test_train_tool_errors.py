"""tools/train.py: a user's mistake is one ``error:`` line and a non-zero exit; a bug keeps its traceback."""

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


def test_optimizer_setting_of_the_wrong_type(train_tool, capsys, video_root, tmp_path):
    argv = options(video_root, tmp_path, **{"optim_wrapper.generator.optimizer.lr": "2e-3x"})
    line = run(train_tool, capsys, *argv)
    assert "optim_wrapper.generator.optimizer.lr must be a number" in line and "2e-3x" in line


def test_missing_checkpoint_to_resume(train_tool, capsys, video_root, tmp_path):
    line = run(train_tool, capsys, "--resume", tmp_path / "missing.pth", *options(video_root, tmp_path))
    assert "missing.pth" in line


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


def test_an_interrupt_is_one_line_saying_how_to_resume(train_tool, capsys, video_root, tmp_path, monkeypatch):
    from lmtk.models.lia import LIA

    def interrupted(self, data, optim_wrapper):
        raise KeyboardInterrupt

    monkeypatch.setattr(LIA, "train_step", interrupted)
    assert train_tool.main([CONFIG, *options(video_root, tmp_path)]) == 130
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == "error: interrupted at iteration 0; continue from the last checkpoint with --resume"
