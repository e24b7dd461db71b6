"""tools/synthetic_ablations.py reports a config that fails to train as one error line."""

import pytest
from tool_scripts import load_tool


def test_a_config_that_fails_to_train_is_one_error_line(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("model = dict(type='lmtk.NoSuchModel.v1')\n")
    code = load_tool("synthetic_ablations").main(
        ["--configs", str(broken), "--iters", "1", "--work-dir", str(tmp_path / "work")]
    )
    assert code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    # the training tool's own error line (here mmengine's: the config has no optimizer) ends it
    assert line.startswith("error: training broken failed (exit 1): error: ") and "optim_wrapper" in line


def test_iterations_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_tool("synthetic_ablations").main(["--iters", "0"])
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err
        == "error: argument --iters: expected a positive integer, got 0 (see --help)\n"
    )
