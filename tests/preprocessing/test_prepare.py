"""prepare_dataset's manifest over several runs into one folder (face finding replaced by a stand-in)."""

import json
import warnings

import pytest

from lmtk.preprocessing import prepare


@pytest.fixture
def fake_processing(monkeypatch):
    """process_video without dlib: a source named ``noface*`` is skipped, any other gives one clip."""

    def process_video(path, name, split, output, options):
        result = {"source": str(path), "name": name, "split": split, "clips": [], "reason": None}
        if name.startswith("noface"):
            result["reason"] = "no face found in 3 checked frames"
            return result
        media = output / split / f"{name}#000.mp4"
        media.parent.mkdir(parents=True, exist_ok=True)
        media.write_bytes(b"clip of %d px" % options.size)
        clip = {"name": f"{name}#000", "split": split, "path": media.relative_to(output).as_posix()}
        frames = {"start_frame": 0, "end_frame": 40, "start_time": 0.0, "end_time": 1.6}
        result["clips"].append({**clip, "source": str(path), **frames})
        return result

    monkeypatch.setattr(prepare, "process_video", process_video)
    monkeypatch.setattr(prepare, "_check_dlib", lambda: None)


def _videos(folder, *names):
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / f"{name}.mp4").write_bytes(b"")
    return [folder / f"{name}.mp4" for name in names]


def _run(inputs, output, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manifest = prepare.prepare_dataset(inputs, output, progress=False, split=1.0, **options)
    assert manifest == json.loads((output / prepare.MANIFEST_NAME).read_text())
    assert not (output / prepare.PREVIOUS_NAME).exists()
    return manifest, [str(w.message) for w in caught if w.category is prepare.PrepareWarning]


def test_a_second_run_adds_to_the_manifest(fake_processing, tmp_path):
    output = tmp_path / "data"
    first, notes = _run(_videos(tmp_path / "a", "beach", "noface1"), output)
    assert [clip["name"] for clip in first["clips"]] == ["beach#000"] and not notes

    second, notes = _run(_videos(tmp_path / "b", "kitchen", "noface2"), output)
    assert [clip["name"] for clip in second["clips"]] == ["beach#000", "kitchen#000"]
    assert second["splits"]["train"] == ["beach#000", "kitchen#000"]
    assert [entry["source"][-11:] for entry in second["skipped"]] == ["noface1.mp4", "noface2.mp4"]
    report = (output / prepare.REPORT_NAME).read_text()
    assert report.startswith("2 clips (2 train, 0 test) from 2 of 4 videos")
    assert "beach#000 (train)" in report and "kitchen#000 (train)" in report and not notes

    # processing sources again replaces their entries
    third, notes = _run(_videos(tmp_path / "a", "beach", "noface1"), output)
    assert [clip["name"] for clip in third["clips"]] == ["beach#000", "kitchen#000"] and not notes
    assert len(third["skipped"]) == 2
    # a clip deleted by hand since is left out
    (output / "train" / "kitchen#000.mp4").unlink()
    fourth, _ = _run(_videos(tmp_path / "a", "beach"), output)
    assert [clip["name"] for clip in fourth["clips"]] == ["beach#000"]


def test_other_settings_than_the_kept_clips_give_a_warning(fake_processing, tmp_path):
    output = tmp_path / "data"
    _run(_videos(tmp_path / "a", "beach"), output, size=128)
    manifest, notes = _run(_videos(tmp_path / "b", "kitchen"), output, size=256)
    assert len(manifest["clips"]) == 2 and manifest["size"] == 256
    (note,) = notes
    assert (
        note.startswith("1 clip of an earlier run, kept in the manifest, made with")
        and "size 128 -> 256" in note
    )
    assert f"warning: {note}" in (output / prepare.REPORT_NAME).read_text()
    # nothing kept from the earlier run: nothing to warn about
    _, notes = _run([tmp_path / "a" / "beach.mp4", tmp_path / "b" / "kitchen.mp4"], output, size=64)
    assert not notes


def test_an_interrupted_run_keeps_the_earlier_manifest(fake_processing, tmp_path, monkeypatch):
    output = tmp_path / "data"
    _run(_videos(tmp_path / "a", "beach"), output)

    def interrupted(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(prepare, "process_video", interrupted)
        with pytest.raises(KeyboardInterrupt):
            prepare.prepare_dataset(_videos(tmp_path / "b", "kitchen"), output, progress=False, split=1.0)
    assert not (output / prepare.MANIFEST_NAME).exists()  # incomplete while it was being rewritten
    manifest, _ = _run([tmp_path / "b" / "kitchen.mp4"], output)
    assert [clip["name"] for clip in manifest["clips"]] == ["beach#000", "kitchen#000"]


def test_clips_of_a_renamed_source_are_deleted(fake_processing, tmp_path):
    output = tmp_path / "data"
    _run(_videos(tmp_path / "a", "beach"), output)
    assert (output / "train" / "beach#000.mp4").exists()
    # a second beach.mp4 gives both sources a name with a path hash: the old clip would be orphaned
    manifest, _ = _run([tmp_path / "a" / "beach.mp4", *_videos(tmp_path / "b", "beach")], output)
    names = sorted(path.name for path in (output / "train").iterdir())
    assert names == [clip["name"] + ".mp4" for clip in manifest["clips"]] and len(names) == 2
    assert "beach#000.mp4" not in names


def test_the_tool_prints_the_warnings(fake_processing, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "tools" / "prepare_dataset.py"
    spec = importlib.util.spec_from_file_location("lmtk_tool_prepare_dataset", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    _videos(tmp_path / "a", "beach")
    _videos(tmp_path / "b", "kitchen")
    base = ["--output", str(tmp_path / "data"), "--split", "1", "--no-progress"]
    assert tool.main(["--input", str(tmp_path / "a"), *base, "--size", "128"]) == 0
    assert tool.main(["--input", str(tmp_path / "b"), *base]) == 0
    captured = capsys.readouterr()
    assert "wrote 2 clips (2 train, 0 test)" in captured.out
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("warning: 1 clip of an earlier run") and "size 128 -> 256" in line


def test_a_folder_of_videos_with_portraits_beside_them_gives_its_videos(tmp_path):
    # The demo layout (clips next to source images) was taken for one frame folder of the images.
    videos = _videos(tmp_path / "vox", "driving1", "driving2")
    (tmp_path / "vox" / "macron.png").write_bytes(b"")
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "00000.png").write_bytes(b"")
    assert prepare.collect_videos([tmp_path / "vox"]) == videos
    assert prepare.collect_videos([frames]) == [frames]
