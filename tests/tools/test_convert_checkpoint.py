"""tools/convert_checkpoint.py: mistakes in its arguments."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location(
        "lmtk_tool_convert", ROOT / "tools" / "convert_checkpoint.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_output_folder_is_refused_before_loading(tmp_path, capsys):
    # the input need not exist: the output is checked first, so no traceback from the final rename
    with pytest.raises(SystemExit) as exit_info:
        _tool().main([str(tmp_path / "missing.pt"), str(tmp_path)])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error:") and "is a folder" in line and "model.pth" in line
