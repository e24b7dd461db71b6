"""Synthetic face renderer: determinism, keypoints on the drawn features, smooth but real motion."""

import numpy as np
import pytest

from lmtk.datasets.synthetic import (
    KEYPOINT_NAMES,
    MOTION_FACTORS,
    MOTION_RANGES,
    NEUTRAL_PARAMS,
    FaceIdentity,
    render_frame,
    render_video,
    sample_clip_motion,
    sample_motion,
)

PUPIL = np.array([18.0, 16.0, 20.0])
SCLERA = np.array([245.0, 244.0, 238.0])
MOUTH_INSIDE = np.array([75.0, 22.0, 32.0])
K = {name: index for index, name in enumerate(KEYPOINT_NAMES)}


def segment_distance(point, start, end):
    """Distance of an RGB colour to the colours blended between ``start`` and ``end``."""
    point, start, end = (np.asarray(v, dtype=np.float64) for v in (point, start, end))
    t = np.clip(np.dot(point - start, end - start) / np.dot(end - start, end - start), 0.0, 1.0)
    return float(np.linalg.norm(point - (start + t * (end - start))))


def pixel(image, keypoints, name, radius=0):
    """Colours of the (2r+1)^2 pixels around a keypoint, (N, 3) float."""
    x, y = np.round(keypoints[K[name]]).astype(int)
    return image[y - radius : y + radius + 1, x - radius : x + radius + 1].reshape(-1, 3).astype(np.float64)


def test_same_seed_same_bytes_and_different_seeds_differ():
    frames_a, keypoints_a, params_a = render_video(seed=11, num_frames=5, size=64)
    frames_b, keypoints_b, params_b = render_video(seed=11, num_frames=5, size=64)
    assert frames_a.dtype == np.uint8 and frames_a.shape == (5, 64, 64, 3)
    assert keypoints_a.dtype == np.float32 and keypoints_a.shape == (5, len(KEYPOINT_NAMES), 2)
    assert frames_a.tobytes() == frames_b.tobytes()
    assert keypoints_a.tobytes() == keypoints_b.tobytes()
    assert all(np.array_equal(params_a[k], params_b[k]) for k in MOTION_FACTORS)

    identities = [FaceIdentity.from_seed(seed) for seed in range(8)]
    assert len(set(identities)) == 8
    assert len({identity.skin for identity in identities}) == 8
    assert len({identity.hair_style for identity in identities}) >= 3
    assert len({identity.background for identity in identities}) >= 3
    frames_c, _, _ = render_video(seed=12, num_frames=5, size=64)
    assert np.abs(frames_a.astype(int) - frames_c.astype(int)).mean() > 10


def test_clips_of_one_seed_share_the_face_not_the_motion():
    first, second = sample_clip_motion(5, 16, clip=0), sample_clip_motion(5, 16, clip=1)
    assert not np.allclose(first["turn"], second["turn"])
    frames_0, _, _ = render_video(5, 2, 64, clip=0)
    frames_1, _, _ = render_video(5, 2, 64, clip=1)
    assert not np.array_equal(frames_0, frames_1)
    # Same background (the top-left corner is never covered by the face).
    assert np.array_equal(frames_0[0, :4, :4], frames_1[0, :4, :4])


def test_identity_round_trips_through_json_fields():
    identity = FaceIdentity.from_seed(3)
    assert FaceIdentity.from_dict(identity.to_dict()) == identity


@pytest.mark.parametrize("size", [64, 128])
def test_keypoints_land_on_their_features(size):
    checked = 0
    for seed in range(8):
        identity = FaceIdentity.from_seed(seed)
        motion = sample_clip_motion(seed, 32)
        skin, lips = np.array(identity.skin, float), np.array(identity.lips, float)
        for t in np.random.default_rng(seed).choice(32, 4, replace=False):
            params = {name: values[t] for name, values in motion.items()}
            if params["blink"] > 0.3:  # a closing lid may cover the pupil
                continue
            image, keypoints = render_frame(identity, params, size)
            assert keypoints.dtype == np.float32 and keypoints.shape == (len(KEYPOINT_NAMES), 2)
            assert (keypoints > 0).all() and (keypoints < size - 1).all()
            for name in ("left_pupil", "right_pupil"):
                colour = pixel(image, keypoints, name)[0]
                eye = segment_distance(colour, PUPIL, identity.iris)
                assert eye < np.linalg.norm(colour - skin) and eye < np.linalg.norm(colour - SCLERA), name
            # The nose tip is a shade of skin (nose shading, nostril edge), not background or hair.
            nose = pixel(image, keypoints, "nose_tip")[0]
            assert segment_distance(nose, skin, 0.45 * skin) < 0.05 * np.linalg.norm(skin)
            chin = pixel(image, keypoints, "chin")[0]
            others = [np.array(c, float) for c in (*identity.background_colors, identity.shirt)]
            assert np.linalg.norm(chin - skin) < min(np.linalg.norm(chin - c) for c in others)
            lip_contrast = np.linalg.norm(lips - skin)
            for name in ("mouth_left", "mouth_right", "upper_lip", "lower_lip"):
                near = min(segment_distance(c, lips, MOUTH_INSIDE) for c in pixel(image, keypoints, name, 1))
                assert near < 0.35 * lip_contrast, name
            if size >= 128:  # lips are several pixels thick: the keypoint pixel itself is lip
                for name in ("upper_lip", "lower_lip"):
                    colour = pixel(image, keypoints, name)[0]
                    assert np.linalg.norm(colour - lips) < np.linalg.norm(colour - skin), name
            checked += 1
    assert checked >= 16


def test_motion_is_smooth_but_not_static():
    size = 64
    for seed in range(4):
        _, keypoints, params = render_video(seed, num_frames=32, size=size)
        steps = np.linalg.norm(np.diff(keypoints, axis=0), axis=-1)
        assert steps.max() < 0.035 * size
        assert np.ptp(keypoints, axis=0).max() > 1.0
        assert np.ptp(keypoints[:, K["nose_tip"]], axis=0).max() > 0.5  # the head itself moves
        for name in ("tx", "ty", "rotation", "scale", "nod", "turn", "gaze_x", "gaze_y"):
            low, high = MOTION_RANGES[name]
            assert np.abs(np.diff(params[name])).max() < 0.08 * (high - low), name


def test_sample_motion_ranges_and_fps():
    motion = sample_motion(np.random.default_rng(0), num_frames=200, fps=25)
    assert tuple(motion) == MOTION_FACTORS
    assert all(values.shape == (200,) and values.dtype == np.float32 for values in motion.values())
    for name in ("blink", "mouth_open"):
        assert motion[name].min() >= 0.0 and motion[name].max() <= 1.0
    assert motion["blink"].max() > 0.8  # 8 s of video has blinks
    assert motion["mouth_open"].max() > 0.3  # and talking
    # Frequencies are in Hz: at 4x the frame rate, consecutive frames are ~4x closer.
    slow = sample_motion(np.random.default_rng(0), num_frames=200, fps=100)
    assert np.abs(np.diff(slow["turn"])).max() < 0.5 * np.abs(np.diff(motion["turn"])).max()


def test_factors_move_the_features_the_documented_way():
    identity = FaceIdentity.from_seed(2)
    _, rest = render_frame(identity, NEUTRAL_PARAMS, 128)

    def moved(**change):
        image, keypoints = render_frame(identity, {**NEUTRAL_PARAMS, **change}, 128)
        return image, keypoints - rest

    _, turn = moved(turn=1.0)
    # Turning right moves the protruding nose tip further than the eye corners.
    assert turn[K["nose_tip"], 0] > turn[K["left_eye_outer"], 0] > 0
    assert turn[K["nose_tip"], 0] > turn[K["right_eye_outer"], 0]
    _, nod = moved(nod=1.0)
    assert nod[K["nose_tip"], 1] > 1.0 and nod[K["left_pupil"], 1] > 1.0  # looking down
    _, shift = moved(tx=0.1, ty=-0.05)
    np.testing.assert_allclose(shift, np.broadcast_to([12.8, -6.4], shift.shape), atol=1e-3)
    _, roll = moved(rotation=10.0)
    eye_line = rest[K["right_eye_outer"]] - rest[K["left_eye_outer"]]
    eye_line_rolled = eye_line + roll[K["right_eye_outer"]] - roll[K["left_eye_outer"]]
    angle = np.degrees(
        np.arctan2(eye_line_rolled[1], eye_line_rolled[0]) - np.arctan2(eye_line[1], eye_line[0])
    )
    assert angle == pytest.approx(10.0, abs=0.1)
    _, gaze = moved(gaze_x=1.0)
    assert gaze[K["left_pupil"], 0] > 1.0 and np.abs(gaze[K["nose_tip"]]).max() < 1e-4
    _, mouth = moved(mouth_open=1.0)
    assert mouth[K["lower_lip"], 1] > 2.0 and np.abs(mouth[K["mouth_left"]]).max() < 1e-4
    closed, blink = moved(blink=1.0)
    assert np.abs(blink).max() < 1e-4  # eyelids carry no keypoint
    pupil = pixel(closed, rest, "left_pupil")[0]
    assert np.linalg.norm(pupil - np.array(identity.skin)) < np.linalg.norm(pupil - PUPIL)


def test_render_frame_validates_its_inputs():
    identity = FaceIdentity.from_seed(0)
    with pytest.raises(ValueError, match="size"):
        render_frame(identity, NEUTRAL_PARAMS, 8)
    with pytest.raises(ValueError, match="unknown motion factors"):
        render_frame(identity, {"yaw": 0.3}, 64)
    image, _ = render_frame(identity, {}, 33)  # odd sizes and missing factors are fine
    assert image.shape == (33, 33, 3)
