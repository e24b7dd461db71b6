"""Frame access for video files, frame folders and frames in memory."""

import re

import numpy as np
import pytest

from lmtk.datasets.video_reader import (
    ArrayVideo,
    DecordVideoReader,
    FrameFolderReader,
    VideoReader,
    find_videos,
    is_frame_folder,
    list_frames,
    open_video,
    split_folder,
)


def test_split_folder_is_the_split_or_a_root_of_videos(tmp_path, make_video):
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "test").mkdir()
    assert split_folder(tmp_path / "data", "test") == tmp_path / "data" / "test"
    # a mistyped split used to fall back to the root and end in "no videos in data"
    with pytest.raises(
        FileNotFoundError, match=r"has no split 'val' and no videos of its own \(its folders: test, train\)"
    ):
        split_folder(tmp_path / "data", "val")
    make_video(tmp_path / "clips" / "a.mp4", num_frames=2)
    assert split_folder(tmp_path / "clips", "test") == tmp_path / "clips"
    with pytest.raises(FileNotFoundError, match="data root not found"):
        split_folder(tmp_path / "nowhere", "test")


def test_video_file_reader(tmp_path, make_video, pattern):
    reader = open_video(make_video(tmp_path / "clip.mp4"))
    assert isinstance(reader, DecordVideoReader)
    assert isinstance(reader, VideoReader)
    assert len(reader) == pattern.num_frames
    assert reader.fps == pytest.approx(25.0)
    assert reader.size == (pattern.height, pattern.width)
    frames = reader.get_frames([17, 3, 17])
    assert frames.shape == (3, pattern.height, pattern.width, 3)
    assert frames.dtype == np.uint8
    assert [pattern.decode_index(f) for f in frames] == [17, 3, 17]
    assert pattern.band_on_left(frames[0])


def test_frame_folder_reader_natural_order(tmp_path, make_frame_folder, pattern):
    folder = make_frame_folder(tmp_path / "clip", num_frames=12)
    (folder / "notes.txt").write_text("not a frame")
    assert [p.name for p in list_frames(folder)][8:11] == ["frame_8.png", "frame_9.png", "frame_10.png"]
    reader = open_video(folder)
    assert isinstance(reader, FrameFolderReader)
    assert isinstance(reader, VideoReader)
    assert len(reader) == 12
    assert reader.size == (pattern.height, pattern.width)
    assert reader.fps == 25.0
    frames = reader.get_frames([11, 2])
    assert frames.shape == (2, pattern.height, pattern.width, 3)
    np.testing.assert_array_equal(frames[0], pattern.frame(11))
    np.testing.assert_array_equal(frames[1], pattern.frame(2))
    assert reader.get_frames([]).shape == (0, pattern.height, pattern.width, 3)


def test_missing_and_unreadable_inputs(tmp_path, make_video):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        open_video(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="bad.mp4") as error:
        open_video(bad)
    assert "(decoder: Invalid data found when processing input)" in str(error.value)  # FFmpeg's reason
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="Not a video"):
        open_video(text)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No frame images"):
        open_video(tmp_path / "empty")
    reader = open_video(make_video(tmp_path / "short.mp4", num_frames=4))
    with pytest.raises(IndexError, match="out of range"):
        reader.get_frames([1, 4])


def test_an_unreadable_video_prints_nothing_of_the_decoders_own(tmp_path, capfd):
    # decord printed "[12:00:00] /src/video/video_reader.cc:83: ERROR opening: ..." on the process's
    # stderr before raising, so a tool's one error line came with a second, foreign one
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="bad.mp4"):
        open_video(bad)
    assert capfd.readouterr().err == ""


def test_only_the_decoders_log_lines_are_held_back(capfd):
    import os

    from lmtk.datasets.video_reader import _without_native_log_lines

    with _without_native_log_lines():
        os.write(2, b"[17:26:09] /github/workspace/src/video/video_reader.cc:83: ERROR opening: a.mp4\n")
        os.write(2, b"another thread's line\n")
    assert capfd.readouterr().err == "another thread's line\n"  # passed on, not lost


def test_a_video_cut_short_is_one_error_saying_so(tmp_path):
    from lmtk.apis.media import VideoWriter

    path = tmp_path / "whole.mp4"
    noise = np.random.default_rng(0).integers(0, 256, (40, 64, 64, 3), dtype=np.uint8)  # incompressible
    with VideoWriter(path, fps=25) as writer:  # the index first (faststart): a cut file still opens
        for frame in noise:
            writer.write(frame)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError) as error:
        reader = open_video(cut)
        reader.get_frames(range(len(reader)))
    message = str(error.value)
    assert message.startswith(f"cannot read video {cut}") and "truncated, corrupt or not a video" in message
    assert ".cc:" not in message  # the decoder's source location is cut


def test_find_videos_skips_images_and_plain_folders(tmp_path, make_video, make_frame_folder, pattern):
    make_video(tmp_path / "b.MP4", num_frames=2)
    make_frame_folder(tmp_path / "a", num_frames=2)
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "still.png").write_bytes(b"")
    (tmp_path / "readme.txt").write_text("x")
    # hidden: an interrupted writer's temporary clip (a frame folder or an mp4)
    make_frame_folder(tmp_path / ".c#000.tmp123", num_frames=2)
    make_video(tmp_path / ".d#000.mp4.tmp123.mp4", num_frames=2)
    assert [p.name for p in find_videos(tmp_path)] == ["a", "b.MP4"]
    assert is_frame_folder(tmp_path / "a") and not is_frame_folder(tmp_path / "empty_dir")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_videos(tmp_path / "nowhere")


def test_array_video_is_a_reader_of_the_frames_it_holds():
    frames = np.arange(5 * 4 * 6 * 3, dtype=np.uint8).reshape(5, 4, 6, 3)
    video = ArrayVideo(frames, fps=30)
    assert isinstance(video, VideoReader)
    assert (len(video), video.fps, video.size) == (5, 30.0, (4, 6))
    np.testing.assert_array_equal(video.get_frames([4, 0, 4]), frames[[4, 0, 4]])
    assert video.get_frames([]).shape == (0, 4, 6, 3)
    assert video.frames is frames  # held, not copied
    assert repr(video) == "ArrayVideo('<array>', frames=5)"
    assert ArrayVideo(frames).fps == 25.0


@pytest.mark.parametrize(
    ("frames", "got"),
    [(np.zeros((4, 6, 3), np.uint8), "(4, 6, 3) uint8"), (np.zeros((2, 4, 6, 3)), "(2, 4, 6, 3) float64")],
)
def test_array_video_refuses_other_arrays_naming_them(frames, got):
    expected = f"driving must be (N, H, W, 3) uint8, got {got}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        ArrayVideo(frames, name="driving")
