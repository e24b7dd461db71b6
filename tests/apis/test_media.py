"""Image loading (any mode to RGB uint8), fitting to the model size, and atomic video writing."""

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from lmtk.apis.media import VideoWriter, fit_image, has_audio, load_image, video_frame_rate


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:, :4, 3] = 255  # left half opaque, right half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert image.shape == (6, 8, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[:, :4], np.broadcast_to([10, 20, 30], (6, 4, 3)))
    np.testing.assert_array_equal(image[:, 4:], np.full((6, 4, 3), 255))


def test_grayscale_and_16_bit(tmp_path):
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    Image.fromarray(grey, "L").save(tmp_path / "grey.png")
    image = load_image(tmp_path / "grey.png")
    assert image.shape == (6, 8, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, np.repeat(grey[..., None], 3, axis=2))

    deep = np.array([[0, 257, 32896, 65535]], np.uint16).repeat(3, axis=0)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as check:
        assert check.mode.startswith("I")  # really stored as 16-bit
    image = load_image(tmp_path / "deep.png")
    assert image.dtype == np.uint8 and image.shape == (3, 4, 3)
    np.testing.assert_array_equal(image[0, :, 0], [0, 1, 128, 255])  # scaled, not clipped at 255


def test_palette_and_errors(tmp_path):
    Image.fromarray(np.full((4, 4, 3), 200, np.uint8)).convert("P").save(tmp_path / "p.gif")
    assert load_image(tmp_path / "p.gif").shape == (4, 4, 3)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read image"):
        load_image(tmp_path / "text.png")


def test_fit_resize_vs_crop():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, :20] = 255  # a white band on the far left, outside the centred square
    resized = fit_image(image, 32, "resize")
    cropped = fit_image(image, 32, "crop")
    assert resized.shape == cropped.shape == (32, 32, 3)
    assert resized.dtype == cropped.dtype == np.uint8
    assert resized[:, :6].min() == 255  # squashed: the band is still there
    assert cropped.max() == 0  # cropped away
    with pytest.raises(ValueError, match="resize mode"):
        fit_image(image, 32, "stretch")


def _clip_with_audio(path, num_frames=30, fps=25):
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 8, np.uint8), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = int(16000 * num_frames / fps)
        tone = (0.3 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 16000)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = tone[None, start : start + 1024]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


def _streams(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return frames, video.average_rate, len(container.streams.audio)


def test_writer_exact_rate_and_audio(tmp_path):
    source = _clip_with_audio(tmp_path / "in.mp4")
    assert has_audio(source) and video_frame_rate(source) == 25
    frames = [np.full((16, 24, 3), i * 10, np.uint8) for i in range(12)]
    for copy in (True, False):
        out = tmp_path / f"out_{copy}.mp4"
        with VideoWriter(out, Fraction(30000, 1001), audio_from=source, copy_audio=copy) as writer:
            for frame in frames:
                writer.write(frame)
        assert _streams(out) == (12, Fraction(30000, 1001), 1)
    with VideoWriter(tmp_path / "silent.mp4", 25, audio_from=None) as writer:
        writer.write(frames[0])
    assert _streams(tmp_path / "silent.mp4") == (1, 25, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "in.mp4", "out_False.mp4", "out_True.mp4", "silent.mp4"
    ]  # fmt: skip


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".avi"])
def test_writer_frames_start_at_zero_in_order_and_faithful(tmp_path, suffix):
    # H.264 in AVI read back one frame late (first frame at 1/30 s), off its audio by that frame
    frames = [np.full((32, 32, 3), 12 * i, np.uint8) for i in range(12)]
    with VideoWriter(tmp_path / f"out{suffix}", 30) as writer:
        for frame in frames:
            writer.write(frame)
    with av.open(str(tmp_path / f"out{suffix}")) as container:
        decoded = [(frame.time, frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]
    assert [round(time * 30) for time, _ in decoded] == list(range(12))
    for (_, got), want in zip(decoded, frames, strict=True):
        assert np.abs(got.astype(int) - want).mean() < 2


def _clip_with_stereo_audio(path, codec):
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = container.add_stream(codec, rate=48000)
        audio.layout = "stereo"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 8, np.uint8), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        fmt = audio.codec_context.format
        for start in range(0, 48000 * 10 // 25, 960):
            zeros = np.zeros(
                (2, 960) if fmt.is_planar else (1, 1920),
                fmt.name.rstrip("p").replace("s16", "int16").replace("flt", "float32"),
            )
            frame = av.AudioFrame.from_ndarray(zeros, format=fmt.name, layout="stereo")
            frame.sample_rate, frame.pts = 48000, start
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


@pytest.mark.parametrize(
    ("codec", "source", "output", "written"),
    [
        ("pcm_s16le", "in.mkv", "out.mp4", "aac"),  # mp4 lists PCM but refuses stereo PCM from matroska
        ("libopus", "in.mkv", "out.mov", "aac"),  # mov lists Opus but takes it only in MP4
        ("libopus", "in.mkv", "out.mp4", "opus"),  # accepted: copied
    ],
)
def test_writer_reencodes_audio_the_container_refuses(tmp_path, codec, source, output, written):
    if codec not in av.codecs_available:
        pytest.skip(f"no {codec} encoder in this PyAV build")
    source = _clip_with_stereo_audio(tmp_path / source, codec)
    with VideoWriter(tmp_path / output, 25, audio_from=source) as writer:
        for _ in range(10):
            writer.write(np.zeros((16, 16, 3), np.uint8))
    with av.open(str(tmp_path / output)) as container:
        assert container.streams.audio[0].codec_context.name == written
        assert sum(1 for _ in container.decode(audio=0)) > 0
    assert _streams(tmp_path / output)[0] == 10


def test_writer_failure_leaves_nothing(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(out, 25) as writer:
        writer.write(np.zeros((16, 16, 3), np.uint8))
        raise RuntimeError("boom")
    assert out.read_bytes() == b"previous result"  # untouched
    writer = VideoWriter(tmp_path / "other.mp4", 25)
    with pytest.raises(ValueError, match="frame 1 is 8x8"):
        writer.write(np.zeros((16, 16, 3), np.uint8))
        writer.write(np.zeros((8, 8, 3), np.uint8))
    writer.abort()
    with pytest.raises(ValueError, match="no frames"):
        VideoWriter(tmp_path / "empty.mp4", 25).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


@pytest.mark.parametrize("crf", [-5, 52, 99])
def test_writer_refuses_a_crf_outside_x264s_range(tmp_path, crf):
    # -5 failed at the first frame with the encoder's errno text, 99 was accepted
    with pytest.raises(ValueError, match=f"crf must be 0-51 .*got {crf}"):
        VideoWriter(tmp_path / "out.mp4", 25, crf=crf)
    assert list(tmp_path.iterdir()) == []


def test_a_writer_removes_only_the_partial_files_nobody_writes(tmp_path):
    import os
    import subprocess
    import time

    from lmtk.processes import host_id

    ended = subprocess.Popen(["true"])
    ended.wait()
    here = host_id()
    names = {
        "dead": f".a.{ended.pid}@{here}.abcd1234.partial.mp4",  # its process has ended: SIGKILLed
        "live": f".b.{os.getpid()}@{here}.abcd1234.partial.mp4",  # a writer at work
        "elsewhere": f".c.{ended.pid}@{int(here, 16) ^ 1:08x}.abcd1234.partial.mp4",  # another machine's
        "idle": f".d.{ended.pid}@{int(here, 16) ^ 1:08x}.abcd1234.partial.mp4",  # untouched for two days
        "untagged_old": ".e.abcd1234.partial.mp4",
        "untagged_new": ".f.abcd1234.partial.mp4",
        "user_file": ".g.partial.mp4",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    two_days_ago = time.time() - 2 * 24 * 3600
    for key in ("idle", "untagged_old", "user_file"):
        os.utime(tmp_path / names[key], (two_days_ago, two_days_ago))
    with VideoWriter(tmp_path / "out.mp4", 25) as writer:
        writer.write(np.zeros((16, 16, 3), np.uint8))
    kept = {"live", "elsewhere", "untagged_new", "user_file"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.mp4", *(names[k] for k in kept)])


def _audio_span(path) -> tuple[float, float]:
    """Where the audio ends and its longest packet, in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        ends = [
            (float(p.pts * p.time_base), float((p.pts + p.duration) * p.time_base))
            for p in container.demux(stream)
            if p.size and p.pts is not None
        ]
    return max(end for _, end in ends), max(end - start for start, end in ends)


@pytest.mark.parametrize("num_frames", [1, 10, 50])
def test_writer_audio_stops_with_the_video(shared_data, tmp_path, num_frames):
    driving = shared_data / "vox" / "driving2.mp4"  # 25 fps, AAC audio in 64 ms packets
    fps = video_frame_rate(driving)
    for copy in (True, False):
        out = tmp_path / f"out_{copy}.mp4"
        with VideoWriter(out, fps, audio_from=driving, copy_audio=copy) as writer:
            for i in range(num_frames):
                writer.write(np.full((16, 16, 3), i, np.uint8))
        end, packet = _audio_span(out)
        duration = num_frames / fps
        assert duration <= end <= duration + packet + 1e-6, (copy, end, duration)
