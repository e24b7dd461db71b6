"""tools/convert_checkpoint.py: mistakes in its arguments."""

from pathlib import Path

import pytest
from tool_scripts import load_tool

ROOT = Path(__file__).resolve().parents[2]


def test_an_output_folder_is_refused_before_loading(tmp_path, capsys):
    # the input need not exist: the output is checked first, so no traceback from the final rename
    with pytest.raises(SystemExit) as exit_info:
        load_tool("convert_checkpoint").main([str(tmp_path / "missing.pt"), str(tmp_path)])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error:") and "is a folder" in line and "model.pth" in line


def test_a_config_as_input_is_refused(tmp_path, capsys):
    # it would load with fresh random weights and be written as if it were a trained model
    with pytest.raises(SystemExit) as exit_info:
        load_tool("convert_checkpoint").main(
            [str(ROOT / "configs/lia/lia_synthetic_m20.py"), str(tmp_path / "out.pth")]
        )
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error:") and "is a config, not a checkpoint" in line
    assert not any(tmp_path.iterdir())


def _tiny(align_corners: bool) -> dict:
    shape = dict(size=64, latent_dim=32, channel_base=256)
    warper = dict(type="lmtk.FlowWarper.v1", align_corners=align_corners)
    return dict(
        type="lmtk.LIA.v1",
        encoder=dict(type="lmtk.LIAEncoder.v1", **shape),
        generator=dict(type="lmtk.FlowGenerator.v1", warper=warper, **shape),
        motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=32, num_directions=5),
    )


@pytest.mark.usefixtures("one_thread")
def test_a_model_the_published_format_cannot_describe_is_refused(tmp_path, capsys):
    import torch

    import lmtk
    from lmtk.registry import build

    for align_corners in (False, True):  # True: the synthetic quickstart's warper, not the published one
        torch.manual_seed(0)
        config = _tiny(align_corners)
        lmtk.save_model(build(config), tmp_path / f"{align_corners}.pth", config=config)
    tool = load_tool("convert_checkpoint")
    assert tool.main([str(tmp_path / "False.pth"), str(tmp_path / "ok.pt"), "--to", "published"]) == 0
    capsys.readouterr()
    assert tool.main([str(tmp_path / "True.pth"), str(tmp_path / "bad.pt"), "--to", "published"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: the published format cannot hold this model")
    assert not (tmp_path / "bad.pt").exists()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    import torch

    import lmtk
    from lmtk.registry import build

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny") / "tiny.pth"
    lmtk.save_model(build(_tiny(False)), path, config=_tiny(False))
    return path


def _one_error_line(capsys) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error:")
    return line


def test_an_output_that_is_no_checkpoint_name_is_refused(tiny_checkpoint, tmp_path, capsys):
    video = tmp_path / "a.mp4"
    video.write_bytes(b"a video")
    for output, to in (
        (video, "lmtk"),
        (tmp_path / "b.txt", "published"),
        (tmp_path / "c.pth", "safetensors"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            load_tool("convert_checkpoint").main([str(tiny_checkpoint), str(output), "--to", to])
        assert exit_info.value.code == 2
        assert f"the output {output} is not named as a checkpoint: end it with" in _one_error_line(capsys)
    assert video.read_bytes() == b"a video"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_an_existing_output_needs_overwrite(tiny_checkpoint, tmp_path, capsys):
    output = tmp_path / "out.pth"
    output.write_bytes(b"an older model")
    tool = load_tool("convert_checkpoint")
    with pytest.raises(SystemExit) as exit_info:
        tool.main([str(tiny_checkpoint), str(output)])
    assert exit_info.value.code == 2
    assert "exists; pass --overwrite to replace it" in _one_error_line(capsys)
    assert output.read_bytes() == b"an older model"
    assert tool.main([str(tiny_checkpoint), str(output), "--overwrite"]) == 0
    assert output.read_bytes() != b"an older model"


def test_the_output_mode_follows_the_umask(tiny_checkpoint, tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        for name, to in (("a.pth", "lmtk"), ("b.pt", "published"), ("c.safetensors", "safetensors")):
            assert (
                load_tool("convert_checkpoint").main([str(tiny_checkpoint), str(tmp_path / name), "--to", to])
                == 0
            )
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    finally:
        os.umask(previous)


def test_to_safetensors_writes_a_model_that_loads(tiny_checkpoint, tmp_path):
    import torch

    import lmtk

    output = tmp_path / "shared.safetensors"
    assert load_tool("convert_checkpoint").main([str(tiny_checkpoint), str(output)]) == 0  # from the suffix
    ours, theirs = lmtk.load_model(tiny_checkpoint), lmtk.load_model(output)
    assert ours.config == theirs.config
    assert all(torch.equal(theirs.state_dict()[k], v) for k, v in ours.state_dict().items())


@pytest.mark.parametrize("failure", ["full disk", "read-only folder"])
@pytest.mark.parametrize("to", ["lmtk", "published", "safetensors"])
def test_an_output_that_cannot_be_written_is_one_line(
    failure, to, tiny_checkpoint, tmp_path, monkeypatch, capsys
):
    import errno
    import os
    import tempfile

    from lmtk import checkpoint

    output = tmp_path / ("out.safetensors" if to == "safetensors" else "out.pth")
    # tests run as root, whom chmod does not stop: the failing calls are simulated
    real_mkstemp = tempfile.mkstemp

    def failing_mkstemp(*args, dir=None, **kwargs):
        if dir is not None and os.path.samefile(dir, tmp_path):  # the published check writes elsewhere
            raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, ".out.x.tmp"))
        return real_mkstemp(*args, dir=dir, **kwargs)

    real_fsync = os.fsync

    def failing_fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    if failure == "full disk":
        monkeypatch.setattr(checkpoint.os, "fsync", failing_fsync)
        expected = f"error: cannot write {output}: the disk is full"
    else:
        monkeypatch.setattr(tempfile, "mkstemp", failing_mkstemp)
        expected = f"error: cannot write {output}: {tmp_path} is not writable"
    assert load_tool("convert_checkpoint").main([str(tiny_checkpoint), str(output), "--to", to]) == 1
    assert _one_error_line(capsys).startswith(expected)
    assert not list(tmp_path.iterdir())


def test_a_random_pickle_as_input_is_one_line_without_warnings(tmp_path):
    import pickle
    import subprocess
    import sys

    # in a process of its own: PyTorch's warning went to stderr before the error line
    (tmp_path / "random.pth").write_bytes(pickle.dumps([1, 2, {"a": 3}], protocol=4))
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools/convert_checkpoint.py"), "random.pth", "out.pth"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot read checkpoint random.pth: the file is cut short or not a PyTorch")


@pytest.mark.usefixtures("one_thread")
def test_liax_converts_to_lmtk_and_back_to_its_bare_format(tmp_path, capsys):
    import torch

    import lmtk
    from lmtk.models.liax_keys import to_liax
    from lmtk.registry import build

    shape = dict(size=32, latent_dim=32, channel_base=256, max_channels=32)
    torch.manual_seed(0)
    model = build(
        dict(
            type="lmtk.LIAX.v1",
            encoder=dict(type="lmtk.LIAEncoder.v1", widen_first=True, **shape),
            generator=dict(
                type="lmtk.LIAXGenerator.v1", norm_groups=8, num_flow_blocks=1, num_refine_blocks=1, **shape
            ),
            motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=32, num_directions=5),
        )
    )
    published = to_liax(model.state_dict())
    torch.save(published, tmp_path / "lia-x.pt")
    tool = load_tool("convert_checkpoint")
    assert tool.main([str(tmp_path / "lia-x.pt"), str(tmp_path / "lmtk.pth")]) == 0
    assert type(lmtk.load_model(tmp_path / "lmtk.pth")).__name__ == "LIAX"
    assert tool.main([str(tmp_path / "lmtk.pth"), str(tmp_path / "back.pt"), "--to", "published"]) == 0
    back = torch.load(tmp_path / "back.pt", weights_only=True)
    assert set(back) == set(published) and all(torch.equal(back[k], published[k]) for k in published)
    assert "wrote" in capsys.readouterr().out
