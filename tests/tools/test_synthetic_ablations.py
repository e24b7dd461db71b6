"""tools/synthetic_ablations.py reports a config that fails to train as one error line."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location(
        "lmtk_tool_ablations", ROOT / "tools" / "synthetic_ablations.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_config_that_fails_to_train_is_one_error_line(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("model = dict(type='lmtk.NoSuchModel.v1')\n")
    code = _tool().main(["--configs", str(broken), "--iters", "1", "--work-dir", str(tmp_path / "work")])
    assert code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    # the training tool's own error line (here mmengine's: the config has no optimizer) ends it
    assert line.startswith("error: training broken failed (exit 1): error: ") and "optim_wrapper" in line


def test_iterations_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _tool().main(["--iters", "0"])
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err
        == "error: argument --iters: expected a positive integer, got 0 (see --help)\n"
    )
