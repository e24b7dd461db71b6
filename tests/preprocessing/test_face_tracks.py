"""Face tracks: smoothing, shot cuts, lost faces and drift on synthetic detections; dlib on real faces."""

import sys

import numpy as np
import pytest
from PIL import Image

from lmtk.preprocessing.face_tracks import (
    FaceTrack,
    face_box_for_video,
    interpolate_segment,
    key_frames,
    link_detections,
    smooth_track,
    split_by_drift,
    track_faces,
)


def _noisy_detections(num_frames=100, every=5, noise=3.0, seed=0):
    """A face drifting slowly right, seen every ``every`` frames with detector-like jitter."""
    rng = np.random.default_rng(seed)
    frames = key_frames(num_frames, every)
    truth = np.array([[200 + 0.2 * f, 150.0, 80.0] for f in frames])
    observed = truth + rng.normal(0, noise, truth.shape)
    return frames, [[tuple(row)] for row in observed]


def test_key_frames_end_on_the_last_frame():
    assert key_frames(12, 5) == [0, 5, 10, 11]
    assert key_frames(11, 5) == [0, 5, 10]
    assert key_frames(1, 5) == [0]
    with pytest.raises(ValueError):
        key_frames(10, 0)


def test_smoothing_removes_jitter():
    rng = np.random.default_rng(1)
    t = np.arange(200.0)
    truth = np.stack([100 + 0.3 * t, 80 + 10 * np.sin(t / 40), np.full_like(t, 60)], 1)
    noisy = truth + rng.normal(0, 4, truth.shape)
    smoothed = smooth_track(noisy, sigma=5)
    assert smoothed.shape == noisy.shape
    raw_error = np.var(noisy - truth, axis=0)
    smooth_error = np.var(smoothed - truth, axis=0)
    assert (smooth_error < 0.15 * raw_error).all()
    # the frame-to-frame jitter, what shows as a shaking crop, falls far more
    assert np.var(np.diff(smoothed, axis=0)) < 0.01 * np.var(np.diff(noisy, axis=0))
    # edge padding: a constant track stays constant up to its ends
    np.testing.assert_allclose(smooth_track(np.full((10, 3), 7.0), 3), 7.0)
    np.testing.assert_array_equal(smooth_track(noisy, 0), noisy)


def test_track_follows_a_jittery_face():
    frames, faces = _noisy_detections()
    tracks = track_faces(frames, faces, num_frames=100, sigma=5)
    assert [(track.start, track.end) for track in tracks] == [(0, 100)]
    track = tracks[0]
    assert track.centers.shape == (100, 2) and track.sizes.shape == (100,)
    assert np.abs(np.diff(track.centers[:, 1])).max() < 0.5  # no per-frame shake left
    box = track.box(margin=0.6, shift=0.1)
    assert box.side == pytest.approx(176, abs=3)  # (1 + 2 * 0.6) * 80
    assert box.center[0] == pytest.approx(210, abs=3) and box.center[1] == pytest.approx(158, abs=3)


def test_jump_is_a_shot_cut():
    frames = [0, 5, 10, 15, 20]
    moved = [[(100, 100, 50)], [(102, 101, 50)], [(300, 100, 50)], [(301, 99, 50)], [(302, 100, 51)]]
    assert [(t.start, t.end) for t in track_faces(frames, moved, 21)] == [(0, 6), (10, 21)]
    zoomed = [[(100, 100, 50)], [(101, 100, 50)], [(100, 100, 120)], [(100, 100, 121)], [(100, 100, 120)]]
    assert [(t.start, t.end) for t in track_faces(frames, zoomed, 21)] == [(0, 6), (10, 21)]


def test_lost_face_ends_a_track_short_gap_does_not():
    frames = list(range(0, 50, 5))
    faces = [[(100.0, 100.0, 50.0)] for _ in frames]
    faces[3] = []  # one miss: 9 frames without a face, interpolated over
    assert [(t.start, t.end) for t in track_faces(frames, faces, 50, max_gap=10)] == [(0, 46)]
    faces[4] = faces[5] = []  # three misses: 19 frames, a new clip
    assert [(t.start, t.end) for t in track_faces(frames, faces, 50, max_gap=10)] == [(0, 11), (30, 46)]


def test_link_picks_the_face_it_follows():
    frames = [0, 5, 10]
    faces = [[(100, 100, 60), (400, 100, 40)], [(400, 100, 40), (103, 100, 60)], [(106, 100, 60)]]
    (segment,) = link_detections(frames, faces)
    np.testing.assert_array_equal(segment[:, 1], [100, 103, 106])
    start, values = interpolate_segment(segment)
    assert start == 0 and values.shape == (11, 3)
    np.testing.assert_allclose(values[:, 0], 100 + 0.6 * np.arange(11))
    assert link_detections([0, 5], [[], []]) == []


def test_drift_splits_so_one_box_holds_the_face():
    t = np.arange(120.0)
    values = np.stack([100 + 2 * t, np.full_like(t, 50), np.full_like(t, 40)], 1)  # pans 6 face sizes
    pieces = split_by_drift(values, max_drift=0.5)
    assert pieces[0][0] == 0 and pieces[-1][1] == 120
    assert all(a == b for (_, a), (b, _) in zip(pieces, pieces[1:]))
    for a, b in pieces:
        track = FaceTrack(a, values[a:b, :2], values[a:b, 2])
        box = track.box(margin=0.6, shift=0.1)
        faces_low = values[a:b, :2] - 20
        faces_high = values[a:b, :2] + 20
        assert (faces_low[:, 0] >= box.x0).all() and (faces_high[:, 0] <= box.x1).all()
        assert (faces_low[:, 1] >= box.y0).all() and (faces_high[:, 1] <= box.y1).all()
    assert split_by_drift(values[:5], 0.5) == [(0, 5)]


def test_missing_dlib_says_how_to_install(monkeypatch):
    from lmtk.preprocessing.face_detection import import_dlib

    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(ImportError, match=r"pip install dlib-bin face-recognition-models.*\[faces\]"):
        import_dlib()


@pytest.fixture(scope="module")
def detector():
    pytest.importorskip("dlib", reason="needs dlib: pip install dlib-bin face-recognition-models")
    from lmtk.preprocessing.face_detection import FaceDetector

    return FaceDetector(upsample=1)


def test_face_box_for_image(shared_data, detector):
    from lmtk.preprocessing.face_detection import face_box_for_image

    image = np.asarray(Image.open(shared_data / "vox" / "macron.png").convert("RGB"))
    (face,) = detector(image)
    assert face.landmarks.shape == (68, 2) and 90 < face.size < 160
    box = face_box_for_image(image, margin=0.6, shift=0.1, detector=detector)
    assert box.width == pytest.approx(box.height) and box.side == pytest.approx(2.2 * face.size)
    assert box.center[0] == pytest.approx(face.center[0]) and box.center[1] > face.center[1]
    assert face_box_for_image(np.full((200, 200, 3), 128, np.uint8), detector=detector) is None


def test_face_box_for_video_holds_every_face(shared_data, detector):
    from lmtk.datasets.video_reader import open_video

    frames = open_video(shared_data / "vox" / "driving1.mp4").get_frames(range(0, 60, 2))
    box = face_box_for_video(frames, detect_every=3, margin=0.2, shift=0.0, detector=detector)
    assert box.width == pytest.approx(box.height)
    for index in (0, 10, 29):
        (face,) = detector(frames[index])
        x0, y0 = face.landmarks.min(0)
        x1, y1 = face.landmarks.max(0)
        assert box.x0 <= x0 and box.y0 <= y0 and x1 <= box.x1 and y1 <= box.y1
    assert face_box_for_video(np.zeros((4, 64, 64, 3), np.uint8), detector=detector) is None
