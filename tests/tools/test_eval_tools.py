"""tools/test.py, vis_directions.py, vis_reference.py and analyze_directions.py end to end (tiny models).

The tools are called in-process through their ``main(argv)``: the same code path as the command line,
without paying the interpreter and torch start-up once per run.
"""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tool_scripts import load_tool

import lmtk
from lmtk.models.lia_keys import to_published
from lmtk.registry import build

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs" / "lia" / "lia_synthetic_m20.py")


def _tiny(basis: str = "lmtk.GramSchmidtBasis.v1") -> dict:
    shape = dict(size=64, latent_dim=32, channel_base=256)
    motion = dict(type=basis, latent_dim=32)
    if basis == "lmtk.GramSchmidtBasis.v1":
        motion["num_directions"] = 5
    return dict(
        type="lmtk.LIA.v1",
        encoder=dict(type="lmtk.LIAEncoder.v1", **shape),
        generator=dict(type="lmtk.FlowGenerator.v1", **shape),
        motion_basis=motion,
    )


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from lmtk.datasets.synthetic import make_synthetic_dataset

    folder = tmp_path_factory.mktemp("eval_tools")
    make_synthetic_dataset(
        folder / "synthetic", num_train=0, num_test=2, num_frames=8, size=64, progress=False
    )
    torch.manual_seed(0)
    lmtk.save_model(build(_tiny()), folder / "tiny.pt", config=_tiny())
    # the published format, as users hold it (architecture inferred from the tensors)
    torch.save(to_published(build(_tiny()).state_dict()), folder / "published.pt")
    lmtk.save_model(
        build(_tiny("lmtk.DirectPath.v1")), folder / "no_dm.pt", config=_tiny("lmtk.DirectPath.v1")
    )
    return folder


def _metrics_json(work_dir: Path) -> dict:
    return json.loads((work_dir / "metrics.json").read_text())


def test_test_tool_on_a_synthetic_split(files, capsys):
    work_dir = files / "recon"
    args = [CONFIG, files / "tiny.pt", "--data-root", files / "synthetic", "--work-dir", work_dir]
    code = load_tool("test").main([*map(str, args), "--random-backbones", "--quiet", "--batch-size", "8"])
    out = capsys.readouterr().out
    assert code == 0
    for row in ("L1", "LPIPS", "AKD", "MKR"):
        assert f"\n{row} " in out
    assert "LPIPS   0." in out and "(random weights (--random-backbones): a smoke test, not a score)" in out
    # dlib's face embedding does not know the synthetic faces: AED is left out unless asked for
    assert "AED     n/a (skipped: dlib's face recognition finds lmtk's synthetic faces only now" in out
    written = _metrics_json(work_dir)
    assert written["num_videos"] == 2 and written["num_frames"] == 16
    assert 0 < written["metrics"]["l1"] < 1 and written["metrics"]["lpips"] > 0
    assert written["metrics"]["mkr_keypoints"] > 0  # synthetic ground-truth keypoints were found
    assert list(written["skipped"]) == ["aed"]
    # AKD: a value (with the share of frames it comes from when not all), or n/a with the reason
    akd, frames = written["metrics"]["akd"], written["metrics"]["akd_frames"]
    if akd is None:
        assert written["notes"]["akd"]
    elif frames < 16:
        assert written["notes"]["akd"] == f"from {frames} of 16 frames" and f"(from {frames} of 16" in out
    rows = list(csv.DictReader((work_dir / "per_video.csv").open()))
    assert [row["video"] for row in rows] == ["id0000#00", "id0001#00"]
    assert {"l1", "lpips", "akd", "mkr", "num_frames"} <= set(rows[0])


def test_test_tool_leaves_out_a_video_that_cannot_be_read(files, tmp_path, capsys):
    # one corrupt video stopped the whole evaluation, and the finished videos' work was lost
    root = tmp_path / "synthetic"
    shutil.copytree(files / "synthetic", root)
    good, bad = sorted((root / "test").glob("*.mp4"))
    bad.write_bytes(bad.read_bytes()[:3000])
    argv = [CONFIG, str(files / "tiny.pt"), "--data-root", str(root), "--metrics", "l1", "--quiet"]
    assert load_tool("test").main([*argv, "--work-dir", str(tmp_path / "out")]) == 0
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert line.startswith("warning: left out 1 of 2 videos that cannot be read") and str(bad) in line
    written = _metrics_json(tmp_path / "out")
    assert written["num_videos"] == 1 and written["per_video"][0]["video"] == good.stem
    assert [row["video"] for row in written["unreadable"]] == [bad.stem] and str(bad) in written[
        "unreadable"
    ][0]["reason"]
    assert [row["video"] for row in csv.DictReader((tmp_path / "out" / "per_video.csv").open())] == [
        good.stem
    ]
    # none readable: one error line, and no results
    good.write_bytes(b"not a video")
    assert load_tool("test").main([*argv, "--work-dir", str(tmp_path / "none")]) == 1
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert line.startswith("error: none of the 2 videos could be read") and not (tmp_path / "none").exists()


class _FullDisk:
    """A file whose writes fail as on a full disk."""

    def __init__(self, handle) -> None:
        self.handle = handle

    def write(self, text):
        import errno

        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.handle.close()


def test_test_tool_on_a_full_disk_names_the_file_and_leaves_none(files, tmp_path, capsys, monkeypatch):
    # per_video.csv was left empty (0 bytes) beside metrics.json, and the error named no file
    opened = Path.open

    def open_on_a_full_disk(self, mode="r", *args, **kwargs):
        handle = opened(self, mode, *args, **kwargs)
        return _FullDisk(handle) if "w" in mode and "per_video.csv" in self.name else handle

    monkeypatch.setattr(Path, "open", open_on_a_full_disk)
    work_dir = tmp_path / "out"
    argv = [CONFIG, str(files / "tiny.pt"), "--data-root", str(files / "synthetic"), "--metrics", "l1"]
    assert load_tool("test").main([*argv, "--quiet", "--work-dir", str(work_dir)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: cannot write {work_dir / 'per_video.csv'}: No space left on device\n"
    assert not work_dir.exists()  # nothing half-written, not even the folder


def test_test_tool_reports_metrics_that_cannot_run(files, capsys, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(files / "empty_hub"))
    tool = load_tool("test")
    base = [CONFIG, str(files / "tiny.pt"), "--data-root", str(files / "synthetic"), "--quiet"]
    base += ["--max-videos", "1", "--max-frames", "2"]
    # asked for explicitly: an error line and a non-zero exit
    assert tool.main([*base, "--work-dir", str(files / "asked"), "--metrics", "l1", "lpips"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: metric lpips cannot run") and "--random-backbones" in error
    # by default: skipped with the reason, the rest measured
    assert tool.main([*base, "--work-dir", str(files / "default"), "--keypoints", "synthetic"]) == 0
    cached = files / "empty_hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    out = capsys.readouterr().out
    assert f"n/a (skipped: AlexNet weights not found at {cached} (lmtk never downloads them): download" in out
    assert "or pass --lpips-weights FILE; --random-backbones runs it with random weights" in out
    written = _metrics_json(files / "default")
    assert "lpips" in written["skipped"] and written["metrics"]["l1"] > 0
    # a weights file that is not one: an error line naming it, no traceback
    bad = files / "bad_alexnet.pth"
    bad.write_bytes(b"garbage")
    weights = ["--metrics", "lpips", "--lpips-weights", str(bad), "--work-dir", str(files / "bad")]
    assert tool.main([*base, *weights]) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot read the AlexNet weights {bad}: the file is")
    # random weights and a weights file at once: refused before anything runs
    with pytest.raises(SystemExit) as refused:
        tool.main([*base, *weights, "--random-backbones"])
    assert refused.value.code == 2
    assert "--lpips-weights and --random-backbones contradict each other" in capsys.readouterr().err


def test_test_tool_without_dlib_skips_the_face_metrics(files, capsys, monkeypatch):
    from lmtk.evaluation.extractors import dlib_faces

    def missing():
        raise ImportError(f"dlib is not installed; install it with `{dlib_faces.DLIB_INSTALL_HINT}`")

    monkeypatch.setattr(dlib_faces, "import_dlib", missing)
    # a clip without its ground truth, so that AED is not left out for being synthetic
    plain = files / "plain"
    plain.mkdir(exist_ok=True)
    (plain / "clip.mp4").write_bytes((files / "synthetic" / "test" / "id0000#00.mp4").read_bytes())
    args = [CONFIG, files / "tiny.pt", "--data-root", plain, "--work-dir", files / "no_dlib"]
    args += ["--max-videos", "1", "--max-frames", "2", "--keypoints", "dlib68", "--random-backbones"]
    assert load_tool("test").main([*map(str, args), "--quiet"]) == 0
    out = capsys.readouterr().out
    for row in ("AKD", "MKR", "AED"):
        assert f"{row}     n/a (skipped: dlib is not installed" in out
    assert _metrics_json(files / "no_dlib")["metrics"]["l1"] > 0


def test_test_tool_transfer_protocol(files, capsys):
    args = [CONFIG, files / "tiny.pt", "--data-root", files / "synthetic", "--work-dir", files / "transfer"]
    args += ["--protocol", "transfer", "--metrics", "l1", "akd", "mkr", "--max-frames", "3", "--save-videos"]
    assert load_tool("test").main([*map(str, args), "--quiet"]) == 0
    assert "n/a (needs ground truth" in capsys.readouterr().out
    written = _metrics_json(files / "transfer")
    assert written["protocol"] == "transfer" and written["num_pairs"] == 2
    assert len(list((files / "transfer" / "videos").glob("*_by_*.mp4"))) >= 1


def test_test_tool_transfer_counts_pairs(files, capsys):
    args = [CONFIG, files / "tiny.pt", "--data-root", files / "synthetic", "--work-dir", files / "pairs"]
    args += ["--protocol", "transfer", "--metrics", "l1", "--max-frames", "2", "--num-pairs", "1"]
    assert load_tool("test").main([*map(str, args), "--quiet"]) == 0
    assert "protocol: transfer, pairs: 1\n" in capsys.readouterr().out


def test_test_tool_face_metrics_on_real_clips(files, shared_data, capsys):
    pytest.importorskip("dlib", reason="dlib is not installed (pip install dlib-bin face-recognition-models)")
    work_dir = files / "vox"
    args = [CONFIG, files / "published.pt", "--data-root", shared_data / "vox", "--work-dir", work_dir]
    args += ["--max-videos", "1", "--max-frames", "8", "--metrics", "l1", "akd", "mkr", "aed"]
    assert load_tool("test").main([*map(str, args), "--quiet", "--batch-size", "8"]) == 0
    written = _metrics_json(work_dir)
    assert written["per_video"][0]["video"] == "driving1" and written["num_frames"] == 8
    metrics = written["metrics"]
    assert metrics["mkr_keypoints"] == 8 * 68  # dlib found the face in every real frame
    assert 0 <= metrics["mkr"] <= 1 and metrics["aed_frames"] == 8 and metrics["aed"] > 0
    assert metrics["akd"] is not None or "detected in both" in written["notes"]["akd"]


def test_vis_directions_grid_and_animations(files, capsys):
    image = files / "source.png"
    Image.fromarray(np.full((80, 80, 3), 120, np.uint8)).save(image)
    output = files / "directions"
    args = ["--checkpoint", files / "tiny.pt", "--image", image, "--directions", "1-3", "--steps", "4"]
    args += ["--output-dir", output, "--format", "gif"]
    assert load_tool("vis_directions").main(list(map(str, args))) == 0
    assert "orthogonality error" in capsys.readouterr().out
    assert Image.open(output / "directions.png").size == (4 * 64, 3 * 64)
    assert sorted(p.name for p in output.glob("direction_*.gif")) == [f"direction_{i}.gif" for i in (1, 2, 3)]
    info = json.loads((output / "directions.json").read_text())
    assert info["orthogonality_error"] < 1e-5 and len(info["source_magnitudes"]) == 5
    # a model without a basis has no directions
    args = ["--checkpoint", files / "no_dm.pt", "--image", image, "--output-dir", files / "no_dm"]
    assert load_tool("vis_directions").main(list(map(str, args))) == 1
    assert "no motion basis" in capsys.readouterr().err


def test_vis_directions_alpha_zero_is_the_source_reconstruction(files):
    tool = load_tool("vis_directions")
    model = lmtk.load_model(files / "tiny.pt")
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    sweep = tool.direction_sweeps(model, image, [0, 4], torch.tensor([0.0, 1.0]))
    assert sweep.shape == (2, 2, 3, 64, 64)
    with torch.inference_mode():
        own = model.transfer(image, image, mode="absolute")
    assert torch.allclose(sweep[0, 0], own[0], atol=1e-4)
    assert not torch.allclose(sweep[0, 1], own[0], atol=1e-2)


def test_vis_directions_parses_direction_lists():
    parse = load_tool("vis_directions").parse_directions
    assert parse("0-2,4", 5) == [0, 1, 2, 4] and parse(None, 3) == [0, 1, 2]
    with pytest.raises(ValueError, match="range 3-1 is empty; write it low to high: 1-3"):
        parse("3-1", 5)
    with pytest.raises(ValueError, match="out of range"):
        parse("7", 5)


def test_vis_reference_writes_sources_over_references(files, capsys):
    folder = files / "portraits"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((90, 70, 3), 60 * i, np.uint8)).save(folder / f"{i}.png")
    output = files / "reference.png"
    args = ["--checkpoint", files / "tiny.pt", "--images", folder, "--output", output]
    assert load_tool("vis_reference").main(list(map(str, args))) == 0
    assert Image.open(output).size == (3 * 64, 2 * 64)


def test_vis_reference_takes_a_folder_of_clips(files):
    # the synthetic split is a folder of videos (and their .json annotations)
    output = files / "reference_split.png"
    args = ["--checkpoint", files / "tiny.pt", "--images", files / "synthetic" / "test", "--output", output]
    assert load_tool("vis_reference").main(list(map(str, args))) == 0
    assert Image.open(output).size == (2 * 64, 2 * 64)


def test_analyze_directions_writes_heatmap_and_tables(files, capsys):
    output = files / "analysis"
    args = ["--checkpoint", files / "tiny.pt", "--data-root", files / "synthetic", "--output-dir", output]
    assert (
        load_tool("analyze_directions").main([*map(str, args), "--centre-per-video", "--max-frames", "6"])
        == 0
    )
    out = capsys.readouterr().out
    assert all(f"d{i}:" in out for i in range(5))
    assert Image.open(output / "correlation.png").size[0] > 100
    rows = list(csv.DictReader((output / "correlation.csv").open()))
    assert len(rows) == 5 and "mouth_open" in rows[0] and rows[0]["best_factor"]
    assert "| direction | tx |" in (output / "correlation.md").read_text()
    suggested = json.loads((output / "direction_names.json").read_text())
    assert all(isinstance(i, int) and 0 <= i < 5 for i in suggested.values())


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "annotation, message",
    [('{"params": ', "it is not JSON"), ('{"frames": 8}', "has no 'params'"), ("[1, 2]", "has no 'params'")],
)
def test_analyze_directions_names_a_bad_annotation(files, tmp_path, capsys, annotation, message):
    # a malformed file's JSON error named no file; one without params was a KeyError traceback
    root = tmp_path / "synthetic"
    shutil.copytree(files / "synthetic", root)
    bad = sorted((root / "test").glob("*.json"))[-1]
    bad.write_text(annotation)
    args = ["--checkpoint", files / "tiny.pt", "--data-root", root, "--output-dir", tmp_path / "analysis"]
    assert load_tool("analyze_directions").main(list(map(str, args))) == 1
    line = _one_error_line(capsys)
    assert str(bad) in line and message in line
    assert not (tmp_path / "analysis").exists()


def test_analyze_directions_refuses_a_model_without_a_motion_basis_as_vis_directions_does(files, capsys):
    # it reported one "direction" per latent coordinate instead
    output = files / "no_dm_analysis"
    args = ["--checkpoint", files / "no_dm.pt", "--data-root", files / "synthetic", "--output-dir", output]
    assert load_tool("analyze_directions").main(list(map(str, args))) == 1
    line = _one_error_line(capsys)
    assert "no motion basis" in line and not output.exists()
    image = files / "grey.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(image)
    args = ["--checkpoint", files / "no_dm.pt", "--image", image, "--output-dir", files / "no_dm"]
    assert load_tool("vis_directions").main(list(map(str, args))) == 1
    assert _one_error_line(capsys) == line  # one check, one message


def test_test_tool_fast_path_options(files, capsys):
    base = [CONFIG, str(files / "tiny.pt"), "--data-root", str(files / "synthetic"), "--quiet"]
    base += ["--metrics", "l1", "--max-frames", "4"]
    tool = load_tool("test")
    assert tool.main([*base, "--work-dir", str(files / "plain")]) == 0
    assert tool.main([*base, "--work-dir", str(files / "fast"), "--channels-last", "--blur", "folded"]) == 0
    assert tool.main([*base, "--work-dir", str(files / "bf16"), "--dtype", "bfloat16"]) == 0
    capsys.readouterr()
    plain, fast, bf16 = (_metrics_json(files / name)["metrics"]["l1"] for name in ("plain", "fast", "bf16"))
    assert abs(fast - plain) < 1e-5 * plain  # the same function in float32
    assert bf16 != plain and abs(bf16 - plain) < 0.02 * plain  # bf16 really ran, and agrees


@pytest.mark.parametrize(
    "tool, argv, message",
    [
        ("test", ["--protocol", "transfer", "--skip-source-frame"], "--skip-source-frame applies to"),
        ("test", ["--num-pairs", "3"], "--num-pairs applies to --protocol transfer only"),
        ("test", ["--seed", "1", "--num-pairs", "3"], "--num-pairs and --seed apply to --protocol transfer"),
        ("test", ["--fid-network", "r3d_18"], "--fid-network applies to the fid metric"),
        ("test", ["--metrics", "l1", "--fid-weights", "w.pth"], "add fid to --metrics"),
        ("test", ["--metrics", "l1", "--lpips-weights", "w.pth"], "add lpips to --metrics"),
        ("vis_reference", ["--max-images", "0"], "--max-images: expected a positive integer"),
        ("vis_reference", ["--output", "reference"], "Pillow cannot write a suffix-less file"),
        ("vis_reference", ["--output", "grid.mp4"], "Pillow cannot write a .mp4 file"),
        ("vis_reference", ["--output", "."], "is a folder"),
        ("analyze_directions", ["--max-videos", "0"], "--max-videos: expected a positive integer"),
        ("analyze_directions", ["--max-frames", "-2"], "--max-frames: expected a positive integer"),
        ("analyze_directions", ["--batch-size", "0"], "--batch-size: expected a positive integer"),
        ("vis_directions", ["--fps", "0"], "--fps: expected a positive number"),
        ("vis_directions", ["--fps", "inf"], "--fps: expected a positive number"),
        ("vis_directions", ["--no-animations", "--format", "gif"], "--format only acts on the animations"),
        ("vis_directions", ["--range", "2", "2"], "--range 2 2 sweeps nothing"),
        # NaN or infinite ends gave an all-black grid and NaN alphas in directions.json, exit 0
        ("vis_directions", ["--range", "nan", "inf"], "--range: expected a finite number, got nan"),
        ("vis_directions", ["--range", "-3", "inf"], "--range: expected a finite number, got inf"),
        # a device this machine lacks: one line naming the fix, not a traceback from model loading
        ("test", ["--device", "cuda:99"], "--device: "),
        ("vis_directions", ["--device", "cuda:99"], "--device: "),
        ("vis_reference", ["--device", "cuda:99"], "--device: "),
        ("analyze_directions", ["--device", "cuda:99"], "--device: "),
        # an output folder that is a file: refused before the model runs, not a FileExistsError
        ("test", ["--work-dir", __file__], "is a file; give a folder"),
        ("vis_directions", ["--output-dir", f"{__file__}/sub"], "which is a file; give a folder"),
        ("analyze_directions", ["--output-dir", __file__], "is a file; give a folder"),
    ],
)
def test_options_that_cannot_work_are_refused_when_parsed(tool, argv, message, capsys):
    required = {
        "test": [CONFIG, "model.pt"],
        "vis_reference": ["--checkpoint", "m.pt", "--images", "a.png", "--output", "o.png"],
        "analyze_directions": ["--checkpoint", "m.pt", "--data-root", "d", "--output-dir", "o"],
        "vis_directions": ["--checkpoint", "m.pt", "--image", "a.png"],
    }[tool]
    with pytest.raises(SystemExit) as exit_info:
        load_tool(tool).parse_args([*required, *argv])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error:") and message in line


def test_test_tool_options_of_the_chosen_protocol_are_accepted():
    tool = load_tool("test")
    args = tool.parse_args([CONFIG, "model.pt"])
    assert args.seed == 0 and args.fid_network == "inception_v3" and args.num_pairs is None
    args = tool.parse_args([CONFIG, "m.pt", "--protocol", "transfer", "--num-pairs", "4", "--seed", "2"])
    assert (args.num_pairs, args.seed) == (4, 2)
    args = tool.parse_args([CONFIG, "m.pt", "--metrics", "l1", "fid", "--fid-network", "r3d_18"])
    assert args.fid_network == "r3d_18"
    assert tool.parse_args([CONFIG, "m.pt", "--skip-source-frame"]).skip_source_frame


def test_test_tool_renders_again_when_the_configs_synthetic_set_changed(tmp_path, monkeypatch):
    import argparse

    import lmtk.datasets.synthetic as synthetic

    generate = dict(num_train=0, num_test=2, num_frames=8, size=64, seed=0, layout="video")
    synthetic.make_synthetic_dataset(tmp_path, progress=False, **generate)
    rendered = []
    monkeypatch.setattr(synthetic, "make_synthetic_dataset", lambda root, **kw: rendered.append(kw))
    args = argparse.Namespace(data_root=None, split="test", quiet=True)
    cfg = {"test_dataloader": {"dataset": {"data_root": str(tmp_path), "generate": generate}}}
    assert load_tool("test")._video_folder(args, cfg) == tmp_path / "test"
    assert rendered == []  # the folder matches the config: reused
    cfg["test_dataloader"]["dataset"]["generate"] = {**generate, "num_test": 3}
    load_tool("test")._video_folder(args, cfg)
    assert len(rendered) == 1 and rendered[0]["num_test"] == 3
    # a config's own progress setting neither forces a render nor clashes with --quiet
    cfg["test_dataloader"]["dataset"]["generate"] = {**generate, "progress": True}
    load_tool("test")._video_folder(args, cfg)
    assert len(rendered) == 1
    cfg["test_dataloader"]["dataset"]["generate"] = {**generate, "num_test": 3, "progress": True}
    load_tool("test")._video_folder(args, cfg)
    assert len(rendered) == 2 and rendered[1]["progress"] is False


def _tiny_liax() -> dict:
    shape = dict(size=64, latent_dim=32, channel_base=512, max_channels=32)
    return dict(
        type="lmtk.LIAX.v1",
        encoder=dict(type="lmtk.LIAEncoder.v1", widen_first=True, **shape),
        generator=dict(
            type="lmtk.LIAXGenerator.v1", norm_groups=8, num_flow_blocks=1, num_refine_blocks=1, **shape
        ),
        motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", latent_dim=32, num_directions=5),
        direction_names=dict(yaw1=3, pitch=1),
    )


@pytest.fixture(scope="module")
def liax_checkpoint(files):
    torch.manual_seed(0)
    lmtk.save_model(build(_tiny_liax()), files / "liax.pt", config=_tiny_liax())
    return files / "liax.pt"


def test_vis_directions_takes_direction_names(files, liax_checkpoint, capsys):
    image = files / "liax_source.png"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(image)
    output = files / "liax_directions"
    args = [
        "--checkpoint",
        liax_checkpoint,
        "--image",
        image,
        "--directions",
        "yaw1",
        "pitch",
        "--steps",
        "3",
    ]
    assert (
        load_tool("vis_directions").main(list(map(str, [*args, "--output-dir", output, "--no-animations"])))
        == 0
    )
    info = json.loads((output / "directions.json").read_text())
    assert info["directions"] == [3, 1] and info["direction_names"] == {"3": "yaw1", "1": "pitch"}
    assert Image.open(output / "directions.png").size == (3 * 64, 2 * 64)
    args = ["--checkpoint", liax_checkpoint, "--image", image, "--directions", "nose", "--output-dir", output]
    assert load_tool("vis_directions").main(list(map(str, args))) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --directions must look like") and "yaw1" in line and "pitch" in line


def test_vis_directions_parses_names_beside_indices():
    parse = load_tool("vis_directions").parse_directions
    assert parse(["yaw1", "0-1"], 5, {"yaw1": 3}) == [3, 0, 1] and parse(["all"], 2) == [0, 1]


def test_vis_reference_and_test_tool_run_a_liax_model(files, liax_checkpoint, capsys):
    output = files / "liax_reference.png"
    args = ["--checkpoint", liax_checkpoint, "--images", files / "synthetic" / "test", "--output", output]
    assert load_tool("vis_reference").main(list(map(str, args))) == 0
    assert Image.open(output).size == (2 * 64, 2 * 64)
    work_dir = files / "liax_test"
    args = [CONFIG, liax_checkpoint, "--data-root", files / "synthetic", "--work-dir", work_dir]
    assert load_tool("test").main([*map(str, args), "--metrics", "l1", "--max-frames", "2", "--quiet"]) == 0
    assert _metrics_json(work_dir)["metrics"]["l1"] > 0
