"""tools/export_onnx.py, and the onnxruntime backend and motion smoothing of tools/animate.py and
tools/benchmark.py, end to end on a tiny checkpoint."""

import json

import av
import numpy as np
import pytest
import torch
from tool_scripts import load_tool

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import lmtk  # noqa: E402
from lmtk.apis import Animator  # noqa: E402
from lmtk.apis.smoothing import OneEuroFilter  # noqa: E402
from lmtk.registry import build  # noqa: E402

SHAPE = dict(size=32, latent_dim=32, channel_base=256)
TINY = dict(
    type="lmtk.LIA.v1",
    encoder=dict(type="lmtk.LIAEncoder.v1", **SHAPE),
    generator=dict(type="lmtk.FlowGenerator.v1", **SHAPE),
    motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=32, num_directions=5),
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    lmtk.save_model(build(TINY), folder / "tiny.pt", config=TINY)
    return folder / "tiny.pt"


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    output = tmp_path_factory.mktemp("export") / "tiny_onnx"
    assert load_tool("export_onnx").main([str(checkpoint), "--output", str(output)]) == 0
    return output


@pytest.fixture(scope="module")
def inputs(shared_data, tmp_path_factory):
    clip = sorted((shared_data / "vox").rglob("*.mp4"))[0]
    frames = []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == 12:
                break
    folder = tmp_path_factory.mktemp("inputs")
    with av.open(str(folder / "driving.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    from PIL import Image

    Image.fromarray(frames[0]).save(folder / "source.png")
    return folder / "source.png", folder / "driving.mp4"


def _read(path):
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_export_prints_each_graph_error_and_writes_a_manifest(exported, capsys):
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["model_config"]["encoder"]["type"] == "lmtk.LIAEncoder.v1"
    assert {g["relative_error"] < 1e-4 for g in manifest["graphs"].values()} == {True}


def test_animate_with_onnxruntime_matches_pytorch(checkpoint, exported, inputs, tmp_path):
    source, driving = inputs
    animate = load_tool("animate")
    common = ["--source", str(source), "--driving", str(driving), "--quiet", "--no-audio"]
    assert animate.main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / "pt.mp4"), *common]) == 0
    onnx = ["--checkpoint", str(exported), "--backend", "onnxruntime", "--output", str(tmp_path / "ort.mp4")]
    assert animate.main([*onnx, *common]) == 0
    ours, theirs = _read(tmp_path / "ort.mp4"), _read(tmp_path / "pt.mp4")
    assert ours.shape == theirs.shape and ours.shape[0] == 12
    # the same frames through the same encoder: at most a rounding step apart after x264
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 0.5


def test_an_export_on_the_fly_is_announced(checkpoint, exported, inputs, tmp_path, capsys):
    """Exporting takes a while (minutes with --int8 at 256 px): a note says so first; an export folder
    given is used as it is, without a note."""
    source, driving = inputs
    animate = load_tool("animate")
    common = [
        "--source",
        str(source),
        "--driving",
        str(driving),
        "--quiet",
        "--no-audio",
        "--backend",
        "onnxruntime",
    ]
    folder = tmp_path / "made"
    argv = ["--checkpoint", str(checkpoint), "--export-dir", str(folder), "--output", str(tmp_path / "a.mp4")]
    assert animate.main([*argv, *common]) == 0
    err = capsys.readouterr().err
    assert (
        f"note: exporting {checkpoint} to ONNX into {folder} first" in err
        and (folder / "manifest.json").is_file()
    )
    assert animate.main([*argv, *common]) == 0  # the folder now holds the export: reused
    assert animate.main(["--checkpoint", str(exported), "--output", str(tmp_path / "b.mp4"), *common]) == 0
    assert "exporting" not in capsys.readouterr().err


def test_animate_smooth_passes_the_filter_at_the_video_rate(checkpoint, inputs, tmp_path, monkeypatch):
    source, driving = inputs
    animate = load_tool("animate")
    given = []
    original = Animator.animate

    def spy(self, *args, **kwargs):
        given.append(kwargs.get("smooth"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Animator, "animate", spy)
    common = ["--checkpoint", str(checkpoint), "--source", str(source), "--driving", str(driving), "--quiet"]
    smooth = ["--smooth", "--smooth-min-cutoff", "0.5", "--smooth-beta", "0"]
    assert animate.main([*common, "--output", str(tmp_path / "smooth.mp4"), *smooth]) == 0
    assert animate.main([*common, "--output", str(tmp_path / "raw.mp4")]) == 0
    assert given[0] == OneEuroFilter(min_cutoff=0.5, beta=0.0, fps=25.0) and given[1] is False
    assert _read(tmp_path / "smooth.mp4").shape == _read(tmp_path / "raw.mp4").shape


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--int8"], "--int8 is for --backend onnxruntime"),
        (["--backend", "onnxruntime", "--dtype", "bfloat16"], "--dtype is for --backend pytorch"),
        (["--backend", "onnxruntime", "--channels-last"], "--channels-last is for --backend pytorch"),
        (["--smooth-beta", "1"], "--smooth-beta needs --smooth"),
        (["--smooth", "--smooth-beta", "-1"], "beta must be a number >= 0"),
    ],
)
def test_animate_refuses_options_of_the_other_backend(argv, message, capsys):
    animate = load_tool("animate")
    with pytest.raises(SystemExit) as exit_info:
        animate.parse_args(["--checkpoint", "c", "--source", "s", "--driving", "d", "--output", "o", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_export_folders_are_one_error_line(checkpoint, exported, inputs, tmp_path, capsys):
    source, driving = inputs
    animate = load_tool("animate")
    common = ["--source", str(source), "--driving", str(driving), "--quiet", "--backend", "onnxruntime"]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("[]")
    output = tmp_path / "out.mp4"
    assert animate.main(["--checkpoint", str(broken), "--output", str(output), *common]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not an lmtk ONNX manifest" in err
    assert not output.exists()
    torch.manual_seed(1)
    other = tmp_path / "other.pt"
    lmtk.save_model(build(TINY), other, config=TINY)
    argv = ["--checkpoint", str(other), "--export-dir", str(exported), "--output", str(output), *common]
    assert animate.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exported from other weights" in err
    assert not output.exists()


def test_export_tool_refuses_a_bad_checkpoint(tmp_path, capsys):
    (tmp_path / "bad.pt").write_bytes(b"no checkpoint")
    assert load_tool("export_onnx").main([str(tmp_path / "bad.pt"), "--output", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_benchmark_times_both_backends_with_latency(checkpoint, tmp_path):
    report = load_tool("benchmark").main(
        [str(checkpoint), "--device", "cpu", "--frames", "4", "--iters", "1", "--batch-size", "2", "--threads", "1",
         "--reference", "--reference-frames", "3", "--backend", "pytorch", "onnxruntime", "--latency-frames", "3"]
    )  # fmt: skip
    reference, pytorch, onnx = report["results"]
    assert reference["reference"] and pytorch["backend"] == "pytorch" and onnx["backend"] == "onnxruntime"
    for record in (reference, pytorch, onnx):
        assert 0 < record["latency_ms_p50"] <= record["latency_ms_p95"]
    assert onnx["latency_frames"] == 3 and reference["latency_frames"] == 6
    assert report["speedup_vs_reference"] == max(
        pytorch["speedup_vs_reference"], onnx["speedup_vs_reference"]
    )


def test_compare_backends_prints_psnr_and_l1(checkpoint, exported, inputs, capsys):
    _, driving = inputs
    assert load_tool("compare_backends").main([str(checkpoint), str(exported), str(driving)]) == 0
    rows = {line[:22].strip(): line[22:].split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(rows) == {"pytorch", "onnxruntime float32"}  # exported without --int8
    assert rows["pytorch"][0] == "inf" and float(rows["onnxruntime float32"][0]) > 60
    assert float(rows["onnxruntime float32"][2]) == pytest.approx(float(rows["pytorch"][2]), abs=1e-4)
