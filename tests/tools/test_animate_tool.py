"""tools/animate.py end to end on the demo clips, with a tiny published-format checkpoint."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import pytest
import torch
from tool_scripts import load_tool

import lmtk
from lmtk.models.lia_keys import to_published
from lmtk.registry import build

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "animate.py"


def _tiny(size: int) -> dict:
    # max_channels stays at its default so the published format (which stores only a channel
    # multiplier) describes the network exactly
    shape = dict(size=size, latent_dim=32, channel_base=256)
    return dict(
        type="lmtk.LIA.v1",
        encoder=dict(type="lmtk.LIAEncoder.v1", **shape),
        generator=dict(type="lmtk.FlowGenerator.v1", **shape),
        motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=32, num_directions=5),
    )


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    torch.save(to_published(build(_tiny(32)).state_dict()), folder / "published32.pt")
    lmtk.save_model(build(_tiny(64)), folder / "lmtk64.pt", config=_tiny(64))
    (folder / "tiny32.py").write_text(f"model = {_tiny(32)!r}\n")
    return folder


def _run(*args):
    # one thread: a 32 px model gains nothing from more, and the test cores are shared
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, env=env, timeout=300
    )


def _probe(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return dict(
            frames=frames,
            rate=video.average_rate,
            width=video.codec_context.width,
            height=video.codec_context.height,
            audio=len(container.streams.audio),
        )


def test_published_checkpoint_with_audio(shared_data, checkpoints, tmp_path):
    out = tmp_path / "macron.mp4"
    result = _run(
        "--checkpoint", checkpoints / "published32.pt", "--source", shared_data / "vox" / "macron.png",
        "--driving", shared_data / "vox" / "driving2.mp4", "--output", out, "--batch-size", 32,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _probe(out) == dict(frames=221, rate=25, width=32, height=32, audio=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["macron.mp4"]


def test_large_source_side_by_side_no_audio(shared_data, checkpoints, tmp_path, tool, capsys):
    out = tmp_path / "ted.mp4"
    code = tool.main([
        "--checkpoint", str(checkpoints / "published32.pt"), "--source", str(shared_data / "ted" / "subject1.png"),
        "--driving", str(shared_data / "vox" / "driving2.mp4"), "--output", str(out), "--batch-size", "32",
        "--no-audio", "--side-by-side", "--find-start-frame", "--resize", "crop", "--quiet",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "start frame:" in err
    info = _probe(out)
    assert info["frames"] == 221 and info["audio"] == 0
    assert info["width"] == 3 * info["height"] == 96


@pytest.fixture(scope="module")
def tool():
    return load_tool("animate")


def _expect_error(tool, capsys, argv, match):
    try:
        code = tool.main(argv)
    except SystemExit as exit_info:  # refused while parsing (argparse)
        code = exit_info.code
    err = capsys.readouterr().err
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert match in lines[0] and "Traceback" not in err
    return lines[0]


def test_expected_errors_are_one_line(shared_data, checkpoints, tmp_path, tool, capsys):
    macron, driving = shared_data / "vox" / "macron.png", shared_data / "vox" / "driving2.mp4"
    out = tmp_path / "out.mp4"
    base = ["--checkpoint", str(checkpoints / "published32.pt"), "--output", str(out), "--quiet"]
    _expect_error(tool, capsys, [*base, "--source", str(tmp_path / "none.png"), "--driving", str(driving)],
                  "not found")  # fmt: skip
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video")
    _expect_error(tool, capsys, [*base, "--source", str(macron), "--driving", str(text)], "cannot read video")
    mismatched = [
        "--checkpoint", str(checkpoints / "lmtk64.pt"), "--config", str(checkpoints / "tiny32.py"),
        "--source", str(macron), "--driving", str(driving), "--output", str(out), "--quiet",
    ]  # fmt: skip
    _expect_error(tool, capsys, mismatched, "lmtk64.pt")
    _expect_error(tool, capsys, [*base, "--source", str(macron), "--driving", str(driving),
                                 "--start-frame", "221"], "out of range")  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        tool.main([*base, "--source", str(macron), "--driving", str(driving), "--batch-size", "0"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error:") and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.mp4"]


@pytest.mark.parametrize("crf", ["-5", "52", "99", "high"])
def test_a_crf_outside_0_to_51_is_refused_when_parsed(tool, capsys, crf):
    # -5 failed after the model had loaded with the encoder's errno text; 99 was accepted
    argv = ["--checkpoint", "m.pt", "--source", "s.png", "--driving", "d.mp4", "--output", "o.mp4"]
    with pytest.raises(SystemExit) as exit_info:
        tool.parse_args([*argv, "--crf", crf])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: argument --crf: expected") and "0-51" in line and crf in line


@pytest.mark.parametrize("shape", [(40, 1), (1, 40)])
def test_paste_back_into_a_one_pixel_source_is_one_line(
    shared_data, checkpoints, tmp_path, tool, capsys, shape
):
    # the video is written at the source's size: a 1-pixel side was an IndexError traceback from PyAV
    import numpy as np
    from PIL import Image

    Image.fromarray(np.full((*shape, 3), 120, np.uint8)).save(tmp_path / "thin.png")
    argv = [
        "--checkpoint", str(checkpoints / "published32.pt"), "--source", str(tmp_path / "thin.png"),
        "--driving", str(shared_data / "vox" / "driving1.mp4"), "--output", str(tmp_path / "out.mp4"),
        "--crop-source", "--paste-back", "--no-audio", "--quiet",
    ]  # fmt: skip
    line = _expect_error(tool, capsys, argv, "--paste-back")
    assert f"{shape[1]}x{shape[0]}" in line and "at least 2x2" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thin.png"]


def _stop_writing_at(tool, monkeypatch, frame_count: int, stop) -> list:
    """Call ``stop()`` when frame ``frame_count`` is about to be written; returns the frames written."""
    written = []
    original = tool.VideoWriter.write

    def write(self, frame):
        if len(written) == frame_count:
            stop()
        written.append(1)
        original(self, frame)

    monkeypatch.setattr(tool.VideoWriter, "write", write)
    return written


def _write_argv(shared_data, checkpoints, out) -> list[str]:
    return [
        "--checkpoint", str(checkpoints / "published32.pt"), "--source", str(shared_data / "vox" / "macron.png"),
        "--driving", str(shared_data / "vox" / "driving2.mp4"), "--output", str(out), "--quiet",
    ]  # fmt: skip


def test_failure_while_writing_leaves_no_file(shared_data, checkpoints, tmp_path, tool, capsys, monkeypatch):
    def disk_full():
        raise ValueError("disk full (simulated)")

    written = _stop_writing_at(tool, monkeypatch, 40, disk_full)
    _expect_error(tool, capsys, _write_argv(shared_data, checkpoints, tmp_path / "out.mp4"), "disk full")
    assert written and list(tmp_path.iterdir()) == []


def test_the_next_run_removes_what_a_sigkilled_run_was_writing(
    shared_data, checkpoints, tmp_path, tool, capsys
):
    # SIGKILL cannot be caught: the killed run's .partial.mp4 stayed in the folder for ever
    import time

    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    killed = subprocess.Popen(
        [sys.executable, str(TOOL), *_write_argv(shared_data, checkpoints, tmp_path / "first.mp4")], env=env
    )
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".first.*.partial.mp4")) and time.monotonic() < deadline:
            assert killed.poll() is None, "the run ended before it was killed"
            time.sleep(0.05)
    finally:
        killed.kill()
        killed.wait()
    assert len(list(tmp_path.glob(".first.*.partial.mp4"))) == 1
    assert tool.main([*_write_argv(shared_data, checkpoints, tmp_path / "second.mp4"), "--no-audio"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["second.mp4"]


def test_sigterm_while_writing_leaves_no_file(shared_data, checkpoints, tmp_path, tool, capsys, monkeypatch):
    # a job scheduler stopping the run
    written = _stop_writing_at(tool, monkeypatch, 40, lambda: os.kill(os.getpid(), signal.SIGTERM))
    assert tool.main(_write_argv(shared_data, checkpoints, tmp_path / "out.mp4")) == 143
    assert capsys.readouterr().err.strip() == "error: terminated"
    assert len(written) == 40 and list(tmp_path.iterdir()) == []  # stopped at once


def test_an_output_that_cannot_be_written_is_one_line_naming_it(
    shared_data, tmp_path, tool, capsys, monkeypatch
):
    import lmtk.apis.media

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(lmtk.apis.media.tempfile, "mkstemp", refused)
    macron = str(shared_data / "vox" / "macron.png")  # as the checkpoint too: the output fails first
    base = [
        "--checkpoint",
        macron,
        "--source",
        macron,
        "--driving",
        str(shared_data / "vox" / "driving2.mp4"),
        "--quiet",
    ]
    line = _expect_error(tool, capsys, [*base, "--output", str(tmp_path / "out.mp4")], "Permission denied")
    assert f"cannot write {tmp_path / 'out.mp4'}" in line and ".partial" not in line
    (tmp_path / "file").write_text("")
    _expect_error(
        tool, capsys, [*base, "--output", str(tmp_path / "file" / "out.mp4")], "file is a file, not a folder"
    )


def test_crop_source_and_paste_back_keep_the_uncropped_frame(
    shared_data, checkpoints, tmp_path, tool, capsys
):
    pytest.importorskip("dlib")
    import numpy as np
    from PIL import Image

    from lmtk.preprocessing import face_box_for_image

    # an uncropped portrait: the 256 px face clip placed off-centre on a larger textured canvas
    # (smooth, so the mp4's 4:2:0 chroma keeps it: only the face box may change beyond coding noise)
    ys, xs = np.mgrid[0:420, 0:560]
    canvas = np.stack([60 + xs * 0.25, 80 + ys * 0.3, 140 + 40 * np.sin(xs / 40)], axis=-1).astype(np.uint8)
    face = np.asarray(Image.open(shared_data / "vox" / "macron.png").convert("RGB"))
    canvas[100:356, 240:496] = face
    source = tmp_path / "portrait.png"
    Image.fromarray(canvas).save(source)
    out = tmp_path / "pasted.mp4"
    code = tool.main([
        "--checkpoint", str(checkpoints / "published32.pt"), "--source", str(source),
        "--driving", str(shared_data / "vox" / "driving1.mp4"), "--output", str(out),
        "--crop-source", "--paste-back", "--no-audio", "--quiet", "--crf", "0", "--batch-size", "32",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert frame.shape == canvas.shape
    x0, y0, x1, y1 = face_box_for_image(canvas, margin=0.6).to_int()
    inside = np.zeros(canvas.shape[:2], bool)
    inside[max(y0, 0) : y1, max(x0, 0) : x1] = True
    difference = np.abs(frame.astype(int) - canvas.astype(int)).mean(axis=2)
    assert difference[~inside].mean() < 3, "pixels outside the face box changed"
    assert difference[inside].mean() > 10, "the face region was not replaced by the animation"


@pytest.mark.parametrize("resize", ["resize", "crop"])
def test_paste_back_without_a_face_keeps_the_source_size(
    shared_data, checkpoints, tmp_path, tool, capsys, resize
):
    pytest.importorskip("dlib")
    import numpy as np
    from PIL import Image

    # no face: the animator used the whole source (or its centred square), and the result goes back
    # there; the output was the model's 32 x 32 instead
    ys, xs = np.mgrid[0:50, 0:70]
    canvas = np.stack([60 + xs, 80 + ys, 140 + 0 * xs], axis=-1).astype(np.uint8)
    Image.fromarray(canvas).save(tmp_path / "wall.png")
    out = tmp_path / "pasted.mp4"
    code = tool.main([
        "--checkpoint", str(checkpoints / "published32.pt"), "--source", str(tmp_path / "wall.png"),
        "--driving", str(shared_data / "vox" / "driving1.mp4"), "--output", str(out), "--resize", resize,
        "--crop-source", "--paste-back", "--no-audio", "--quiet", "--crf", "0", "--batch-size", "32",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "no face found in the source" in capsys.readouterr().err
    frame = _frames(out)[0]
    assert frame.shape == canvas.shape
    if resize == "crop":  # the centred 50 x 50 square was animated; the side strips are the source's
        strips = np.concatenate([frame[:, :8], frame[:, -8:]], axis=1) - np.concatenate(
            [canvas[:, :8], canvas[:, -8:]], axis=1
        )
        assert np.abs(strips).mean() < 3


def _frames(path) -> list:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24").astype(int) for frame in container.decode(video=0)]


def test_fast_path_options_give_the_same_video(shared_data, checkpoints, tmp_path, tool, capsys, monkeypatch):
    applied = []
    switch_on = tool.apply_fast_paths
    monkeypatch.setattr(
        tool, "apply_fast_paths", lambda model, paths: applied.append(paths) or switch_on(model, paths)
    )
    common = [
        "--checkpoint", str(checkpoints / "lmtk64.pt"), "--source", str(shared_data / "vox" / "macron.png"),
        "--driving", str(shared_data / "vox" / "driving2.mp4"), "--batch-size", "32", "--no-audio", "--quiet",
    ]  # fmt: skip
    assert tool.main([*common, "--output", str(tmp_path / "plain.mp4")]) == 0, capsys.readouterr().err
    fast = [*common, "--output", str(tmp_path / "fast.mp4"), "--channels-last", "--blur", "folded"]
    assert tool.main(fast) == 0, capsys.readouterr().err
    assert applied == [tool.FastPaths(channels_last=True, blur="folded")]
    plain, faster = _frames(tmp_path / "plain.mp4"), _frames(tmp_path / "fast.mp4")
    assert len(plain) == len(faster) == 221
    difference = sum(abs(a - b).mean() for a, b in zip(plain, faster)) / len(plain)
    assert difference < 0.5  # of 255: float32 rounding, then the same encoder
    with pytest.raises(SystemExit) as exit_info:
        tool.main([*common, "--output", str(tmp_path / "x.mp4"), "--blur", "sideways"])
    assert exit_info.value.code == 2 and "invalid choice: 'sideways'" in capsys.readouterr().err


def test_bad_outputs_fail_before_the_model_loads(
    shared_data, checkpoints, tmp_path, tool, capsys, monkeypatch
):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(tool, "Animator", no_model)
    (tmp_path / "folder.mp4").mkdir()
    base = [
        "--checkpoint", str(checkpoints / "published32.pt"), "--source", str(shared_data / "vox" / "macron.png"),
        "--driving", str(shared_data / "vox" / "driving2.mp4"), "--quiet",
    ]  # fmt: skip
    _expect_error(
        tool, capsys, [*base, "--output", str(tmp_path / "folder.mp4"), "--no-audio"], "is a folder"
    )
    for name in ("out.png", "out_nosuffix"):
        for audio in ([], ["--no-audio"]):
            _expect_error(tool, capsys, [*base, "--output", str(tmp_path / name), *audio], "such as .mp4")
    capsys.readouterr()
    assert tool.main([*base, "--output", str(tmp_path / "out.png")]) == 1
    assert str(tmp_path / "out.png") in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.mp4"]


def test_bad_devices_and_configs_are_one_line(shared_data, checkpoints, tmp_path, tool, capsys):
    io = [
        "--source", str(shared_data / "vox" / "macron.png"), "--driving", str(shared_data / "vox" / "driving2.mp4"),
        "--output", str(tmp_path / "out.mp4"), "--quiet",
    ]  # fmt: skip
    published = ["--checkpoint", str(checkpoints / "published32.pt")]
    for device in ("mps", "xpu"):
        if not getattr(torch, device).is_available():
            _expect_error(tool, capsys, [*published, *io, "--device", device], "is not available")
    broken = tmp_path / "broken.py"
    broken.write_text("model = dict(type=\n")
    _expect_error(tool, capsys, ["--checkpoint", str(broken), *io], "line 1: syntax error")
    _expect_error(tool, capsys, [*published, "--config", str(broken), *io], "line 1: syntax error")
    undefined = tmp_path / "undefined.py"
    undefined.write_text("size = 32\nmodel = dict(type='lmtk.LIA.v1', size=sise)\n")
    _expect_error(
        tool, capsys, [*published, "--config", str(undefined), *io], "line 2: NameError: name 'sise'"
    )
    config = str(checkpoints / "tiny32.py")
    _expect_error(
        tool, capsys, ["--checkpoint", config, "--config", config, *io], "is a config, not a checkpoint"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.py", "undefined.py"]


@pytest.mark.parametrize(
    "options, match, needed",
    [
        (["--freeze"], "--freeze only acts on compiled graphs", ["--compile"]),
        (["--blur", "separable", "--freeze"], "--freeze only acts on compiled graphs", ["--compile"]),
    ],
)  # fmt: skip
def test_fast_path_options_that_do_nothing_are_refused(tool, capsys, options, match, needed):
    argv = ["--checkpoint", "c.pt", "--source", "s.png", "--driving", "d.mp4", "--output", "o.mp4", *options]
    with pytest.raises(SystemExit) as exit_info:
        tool.parse_args(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error:") and match in err
    tool.parse_args([*argv, *needed])  # with what they act on, they are accepted


def test_edit_then_animate_a_liax_model(shared_data, tmp_path, tool, capsys, monkeypatch):
    import numpy as np

    from lmtk.apis import VideoWriter

    shape = dict(size=32, latent_dim=32, channel_base=256, max_channels=32)
    config = dict(
        type="lmtk.LIAX.v1",
        encoder=dict(type="lmtk.LIAEncoder.v1", widen_first=True, **shape),
        generator=dict(
            type="lmtk.LIAXGenerator.v1", norm_groups=8, num_flow_blocks=1, num_refine_blocks=1, **shape
        ),
        motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=32, num_directions=5),
        direction_names=dict(yaw1=3),
    )
    torch.manual_seed(0)
    lmtk.save_model(build(config), tmp_path / "liax.pth", config=config)
    driving = tmp_path / "driving.mp4"
    with VideoWriter(driving, 25) as writer:
        for i in range(6):
            writer.write(np.full((32, 32, 3), 40 * i, np.uint8))
    edits = []
    encode_source = tool.Animator.encode_source
    monkeypatch.setattr(
        tool.Animator,
        "encode_source",
        lambda self, image, edit=None: edits.append(edit) or encode_source(self, image, edit),
    )
    out = tmp_path / "edited.mp4"
    base = ["--checkpoint", str(tmp_path / "liax.pth"), "--source", str(shared_data / "vox" / "macron.png")]
    base += ["--driving", str(driving), "--quiet"]
    assert tool.main([*base, "--output", str(out), "--edit", "yaw1=0.3", "2=-0.1"]) == 0, (
        capsys.readouterr().err
    )
    assert edits[0] == {"yaw1": 0.3, "2": -0.1} and _probe(out)["frames"] == 6  # then the encoded source
    _expect_error(tool, capsys, [*base, "--output", str(tmp_path / "bad.mp4"), "--edit", "nose=0.1"],
                  "unknown direction 'nose'")  # fmt: skip
    _expect_error(
        tool, capsys, [*base, "--output", str(tmp_path / "bad.mp4"), "--edit", "yaw1"], "DIRECTION=VALUE"
    )
    assert not (tmp_path / "bad.mp4").exists()


def test_a_hub_checkpoint_is_looked_up_in_the_hub_cache(shared_data, tmp_path, tool, capsys, monkeypatch):
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # empty, and no network
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    macron, driving = shared_data / "vox" / "macron.png", shared_data / "vox" / "driving2.mp4"
    argv = ["--checkpoint", "hf://someone/model/lia-x.pt", "--source", str(macron), "--driving", str(driving)]
    _expect_error(tool, capsys, [*argv, "--output", str(tmp_path / "out.mp4"), "--quiet"],
                  "cannot get lia-x.pt of Hugging Face Hub repository someone/model")  # fmt: skip
