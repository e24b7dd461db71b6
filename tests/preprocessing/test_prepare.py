"""prepare_dataset's manifest over several runs into one folder (face finding replaced by a stand-in)."""

import json
import warnings

import pytest
from tool_scripts import load_tool

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


def test_an_interrupted_run_keeps_what_it_finished(fake_processing, tmp_path, monkeypatch):
    output = tmp_path / "data"
    zoo = _videos(tmp_path / "b", "desk", "kitchen", "zoo")
    _run([*_videos(tmp_path / "a", "beach"), zoo[2]], output)
    finish = prepare.process_video

    def interrupted_at_the_second(path, name, split, output, options):
        if name == "kitchen":  # its first clip written, the second half-written
            (output / split / "kitchen#000.mp4").write_bytes(b"a clip")
            (output / split / ".kitchen#001.mp4.tmp123").write_bytes(b"half a clip")
            raise KeyboardInterrupt
        return finish(path, name, split, output, options)

    monkeypatch.setattr(prepare, "process_video", interrupted_at_the_second)
    with pytest.raises(KeyboardInterrupt), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepare.prepare_dataset(zoo, output, progress=False, split=1.0)
    assert [str(w.message) for w in caught] == [
        "interrupted after 1 of 3 videos: run the same command again to finish"
    ]
    # the cut-off video leaves nothing; the one not reached keeps its earlier clip, in the manifest too
    manifest = json.loads((output / prepare.MANIFEST_NAME).read_text())
    assert [clip["name"] for clip in manifest["clips"]] == ["beach#000", "desk#000", "zoo#000"]
    files = sorted(path.name for path in (output / "train").iterdir())
    assert files == ["beach#000.mp4", "desk#000.mp4", "zoo#000.mp4"]
    monkeypatch.setattr(prepare, "process_video", finish)
    manifest, _ = _run(zoo, output)
    assert [clip["name"] for clip in manifest["clips"]] == ["beach#000", "desk#000", "kitchen#000", "zoo#000"]


def test_a_source_keeps_its_name_and_another_of_the_same_name_does_not_replace_it(fake_processing, tmp_path):
    output = tmp_path / "data"
    (first,) = _videos(tmp_path / "a", "beach")
    _run([first], output)
    # another beach.mp4 in a later run: a name of its own; the earlier clip stays
    (other,) = _videos(tmp_path / "b", "beach")
    manifest, _ = _run([other], output)
    names = [clip["name"] for clip in manifest["clips"]]
    assert names[0] == "beach#000" and names[1].startswith("beach_") and len(names) == 2
    assert sorted(path.name for path in (output / "train").iterdir()) == sorted(f"{n}.mp4" for n in names)
    # both again, in one run: each keeps the name it has (and so its split)
    again, _ = _run([first, other], output)
    assert [clip["name"] for clip in again["clips"]] == names
    # into a fresh dataset, the two beach.mp4 of one run both get a name with a path hash
    fresh = prepare.source_names([first, other])
    assert all(name.startswith("beach_") for name in fresh) and fresh[0] != fresh[1]


def test_rerunning_a_source_removes_its_clips_and_half_written_files(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for name in (
        "beach#000.mp4",
        "beach#001",
        ".beach#002.mp4.tmp77",
        "beach_a1b2c3#000.mp4",
        "beachball#000.mp4",
    ):
        (folder / name).mkdir() if "." not in name else (folder / name).write_bytes(b"")
    prepare._remove_clips(tmp_path, "beach", finished=False)
    assert sorted(p.name for p in folder.iterdir()) == [
        "beach#000.mp4",
        "beach#001",
        "beach_a1b2c3#000.mp4",
        "beachball#000.mp4",
    ]
    prepare._remove_clips(tmp_path, "beach")
    assert sorted(p.name for p in folder.iterdir()) == ["beach_a1b2c3#000.mp4", "beachball#000.mp4"]


def test_the_tool_prints_the_warnings(fake_processing, tmp_path, capsys):
    tool = load_tool("prepare_dataset")
    _videos(tmp_path / "a", "beach")
    _videos(tmp_path / "b", "kitchen")
    base = ["--output", str(tmp_path / "data"), "--split", "1", "--no-progress"]
    assert tool.main(["--input", str(tmp_path / "a"), *base, "--size", "128"]) == 0
    assert tool.main(["--input", str(tmp_path / "b"), *base]) == 0
    captured = capsys.readouterr()
    assert (
        f"made 1 clip from 1 of 1 videos (0 skipped: see {tmp_path / 'data' / 'report.txt'}); "
        in captured.out
    )
    assert f"{tmp_path / 'data'} holds 2 clips (2 train, 0 test)" in captured.out
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
