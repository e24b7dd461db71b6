"""tools/studio.py: bad input is one error line and a non-zero exit, before or without a server."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import TINY_LIA, tiny_lia
from tool_scripts import TOOLS, load_tool

import lmtk


def test_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert load_tool("studio").main(["--checkpoint", str(tmp_path / "missing.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing.pt" in err and err.count("\n") == 1


def test_bad_port_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_tool("studio").main(["--checkpoint", "x.pt", "--port", "70000"])
    assert exit_info.value.code == 2 and "--port must be 1-65535" in capsys.readouterr().err


def test_backend_options_reach_the_studio(monkeypatch, capsys):
    tool = load_tool("studio")
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--checkpoint", "x.pt", "--int8"])
    assert exit_info.value.code == 2 and "--int8 is for --backend onnxruntime" in capsys.readouterr().err
    pytest.importorskip("gradio", reason="the studio needs pip install -e .[studio]")
    import lmtk.studio.server

    served = {}
    monkeypatch.setattr(lmtk.studio.server, "serve", lambda checkpoint, **options: served.update(options))
    argv = ["--checkpoint", "x.pt", "--backend", "onnxruntime", "--export-dir", "x_onnx", "--int8"]
    assert tool.main(argv) == 0
    assert served["backend"] == "onnxruntime" and served["export_dir"] == "x_onnx" and served["int8"] is True
    served.clear()
    assert tool.main(["--checkpoint", "x.pt"]) == 0
    assert "backend" not in served  # serve's default: pytorch


def test_port_in_use_is_one_line(tmp_path):
    pytest.importorskip("gradio", reason="the studio needs pip install -e .[studio]")
    lmtk.save_model(tiny_lia(), tmp_path / "tiny.safetensors", config=TINY_LIA)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(Path(TOOLS).parent), "TMPDIR": str(tmp_path)}
        result = subprocess.run(
            [sys.executable, str(TOOLS / "studio.py"), "--checkpoint", str(tmp_path / "tiny.safetensors")]
            + ["--port", str(port)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in result.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("lmtk-studio-")]  # nothing left behind
