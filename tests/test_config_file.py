"""read_config: a config's mistake is one line that names the file, the line and the error."""

import pytest

from lmtk.config_file import read_config, read_stored_config


def test_a_good_config_reads(tmp_path):
    (tmp_path / "base.py").write_text("size = 32\n")
    (tmp_path / "child.py").write_text("_base_ = ['base.py']\nlatent = 64\n")
    cfg = read_config(tmp_path / "child.py")
    assert (cfg.size, cfg.latent) == (32, 64)


@pytest.mark.parametrize(
    "text, message",
    [
        ("a = 1\nmodel = dict(size=sise)\n", "line 2: NameError: name 'sise' is not defined"),
        ("model = dict(size=\n", "line 1: syntax error"),
        ("x = 1 / 0\n", "line 1: ZeroDivisionError"),
    ],
)
def test_a_mistake_names_file_line_and_error(tmp_path, text, message):
    config = tmp_path / "bad.py"
    config.write_text(text)
    with pytest.raises(ValueError) as raised:
        read_config(config)
    assert str(raised.value).startswith(f"cannot read config {config}: {message}")


def test_a_mistake_in_a_base_config_names_the_base(tmp_path):
    (tmp_path / "base.py").write_text("size = 32\nwidth = widht\n")
    (tmp_path / "child.py").write_text("_base_ = ['base.py']\n")
    with pytest.raises(ValueError, match=r"base\.py, line 2: NameError: name 'widht'"):
        read_config(tmp_path / "child.py")


def test_a_missing_config_or_base(tmp_path):
    with pytest.raises(FileNotFoundError, match="config not found"):
        read_config(tmp_path / "nowhere.py")
    (tmp_path / "child.py").write_text("_base_ = ['missing.py']\n")
    with pytest.raises(ValueError, match="missing.py"):
        read_config(tmp_path / "child.py")


def test_a_config_named_like_the_reader_still_gets_its_line(tmp_path):
    # the reader's own frames are left out by path, not by file name
    config = tmp_path / "config_file.py"
    config.write_text("x = nope\n")
    with pytest.raises(ValueError, match=r"config_file\.py: line 1: NameError"):
        read_config(config)


def test_a_folder_or_a_checkpoint_is_not_a_config(tmp_path):
    # a training work dir keeps a copy of its config: the error names it
    (tmp_path / "lia.py").write_text("size = 64\n")
    (tmp_path / "iter_20.pth").write_bytes(b"\x80")
    with pytest.raises(
        ValueError, match=r"is a folder, not a config: pass a config file; this folder has .*lia\.py$"
    ):
        read_config(tmp_path)
    # mmengine said "Only py/yml/yaml/json type are supported now!"
    with pytest.raises(
        ValueError, match=r"iter_20.pth is not a config: a config is a .py, .json, .yaml, .yml file"
    ):
        read_config(tmp_path / "iter_20.pth")


def test_a_stored_config_is_read_as_data(tmp_path):
    from mmengine.config import Config

    cfg = Config(
        dict(
            model=dict(type="lmtk.LIA.v1", size=32, scales=(1, 0.5), lr=-2e-3, flags=[True, None]),
            param_scheduler=[],
        )
    )
    assert read_stored_config(cfg.pretty_text, "ckpt.pth").to_dict() == cfg.to_dict()
    marker = tmp_path / "owned"
    for text in (
        f"model = dict(type=__import__('os').system('touch {marker}'))",
        f"import os\nos.system('touch {marker}')",
        "model = dict(**{'type': 'x'})",
        "model = [x for x in ()]",
    ):
        with pytest.raises(ValueError, match="the config stored in ckpt.pth is code, not plain data"):
            read_stored_config(text, "ckpt.pth")
    assert not marker.exists()
    read_stored_config(f"x = __import__('os').system('touch {marker}')", "ckpt.pth", trust=True)
    assert marker.exists()
