"""Keypoint and identity extractors: the Keypoints masks, the synthetic tracker, dlib on real faces."""

import json

import cv2
import numpy as np
import pytest

from lmtk.datasets.synthetic import render_video
from lmtk.evaluation.extractors import Keypoints, SyntheticKeypoints, load_synthetic_keypoints
from lmtk.evaluation.metrics import AKD, MKR


def _shift(frames, dx, dy):
    """Move the content by (dx, dy) pixels, repeating the border."""
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return np.stack(
        [cv2.warpAffine(f, matrix, f.shape[1::-1], borderMode=cv2.BORDER_REPLICATE) for f in frames]
    )


@pytest.fixture(scope="module")
def clip():
    frames, keypoints, _ = render_video(seed=5, num_frames=3, size=64)
    return frames, keypoints


def test_keypoints_masks_and_scaling():
    keypoints = Keypoints(np.array([[0.0, 0.0], [1.0, 3.0]]), visible=[True, False], detected=True)
    assert keypoints.detected.tolist() == [True, False]  # an unusable point cannot count as detected
    scaled = keypoints.scaled(4.0)
    assert scaled.points.tolist() == [[1.5, 1.5], [5.5, 13.5]]  # pixel centres stay on integers
    with pytest.raises(ValueError):
        Keypoints(np.zeros((3, 3)))


def test_synthetic_keypoints_of_an_unchanged_frame_are_the_ground_truth(clip):
    frames, truth = clip
    fake, real = SyntheticKeypoints().pair(frames[1], frames[1], truth[1])
    assert real.method == "ground_truth" and real.detected.sum() >= 8
    assert np.array_equal(fake.points[real.detected], truth[1][real.detected])
    with pytest.raises(ValueError, match="ground truth"):
        SyntheticKeypoints()(frames[0])


def test_akd_recovers_a_known_shift_of_synthetic_frames(clip):
    frames, truth = clip
    extractor = SyntheticKeypoints()
    akd, mkr = AKD(extractor=extractor), MKR(extractor=extractor)
    same = {"fake": frames, "real": frames, "keypoints": truth}
    shifted = {"fake": _shift(frames, 2, 1), "real": frames, "keypoints": truth}
    for metric in (akd, mkr):
        metric.process(None, [same])
    assert akd.compute_metrics(akd.results)["akd"] == 0.0
    assert mkr.compute_metrics(mkr.results)["mkr"] == 0.0
    euclidean = AKD(extractor=extractor, euclidean=True)
    for metric in (akd, euclidean):
        metric.results.clear()
        metric.process(None, [shifted])
    # a (2, 1) pixel shift: mean absolute coordinate difference 1.5, Euclidean distance sqrt(5)
    assert akd.compute_metrics(akd.results)["akd"] == pytest.approx(1.5, abs=0.05)
    assert euclidean.compute_metrics(euclidean.results)["akd"] == pytest.approx(np.sqrt(5), abs=0.05)


def test_synthetic_tracker_reports_features_that_are_gone(clip):
    frames, truth = clip
    blank = np.full_like(frames[:1], 128)
    fake, real = SyntheticKeypoints().pair(blank[0], frames[0], truth[0])
    assert real.detected.any() and not fake.detected.any()


def test_load_synthetic_keypoints_scales_to_the_model_size(tmp_path):
    (tmp_path / "id0000#00.json").write_text(json.dumps({"size": 32, "keypoints": [[[0.0, 15.5]]]}))
    assert load_synthetic_keypoints(tmp_path / "id0000#00.mp4").tolist() == [[[0.0, 15.5]]]
    assert load_synthetic_keypoints(tmp_path / "id0000#00.mp4", size=64).tolist() == [[[0.5, 31.5]]]
    assert load_synthetic_keypoints(tmp_path / "other.mp4") is None


# ------------------------------------------------------------------------------------------- dlib
@pytest.fixture(scope="module")
def dlib_installed():
    pytest.importorskip("dlib", reason="dlib is not installed (pip install dlib-bin face-recognition-models)")


@pytest.fixture(scope="module")
def faces(shared_data, dlib_installed):
    from lmtk.apis import load_image

    return {name: load_image(shared_data / "vox" / f"{name}.png") for name in ("macron", "monroe")}


def test_dlib68_finds_68_points_on_a_portrait(faces):
    from lmtk.registry import build

    extractor = build(dict(type="lmtk.Dlib68.v1"))
    image = faces["macron"]
    keypoints = extractor(image)
    assert keypoints.points.shape == (68, 2) and keypoints.detected.all()
    assert keypoints.method in ("detector", "upsampled")
    assert (keypoints.points > 0).all() and (keypoints.points < image.shape[0]).all()
    # a small copy is enlarged for the detector and its keypoints come back in its own pixels
    small = extractor(cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA))
    assert small.detected.all()
    assert np.abs(small.points - keypoints.scaled(0.25).points).mean() < 3.0


def test_dlib68_fallback_box_gives_unconfirmed_landmarks(dlib_installed):
    from lmtk.evaluation.extractors import Dlib68

    flat = np.full((128, 128, 3), 90, np.uint8)
    guessed = Dlib68(upsample=0)(flat)
    assert guessed.method == "fallback" and guessed.visible.all() and not guessed.detected.any()
    assert Dlib68(upsample=0, fallback=False)(flat) is None


def test_aed_separates_identities(faces):
    from lmtk.evaluation.extractors import DlibFace
    from lmtk.evaluation.metrics import identity_distance

    extractor = DlibFace()
    macron, monroe = faces["macron"], faces["monroe"]
    jittered = np.clip(_shift(macron[None], 3, -2)[0].astype(int) + 8, 0, 255).astype(np.uint8)
    reference = extractor(macron)
    assert reference.vector.shape == (128,) and reference.detected
    same = identity_distance(extractor(jittered), reference, squared=False)
    other = identity_distance(extractor(monroe), reference, squared=False)
    assert same < 0.3 < other  # dlib's same-person threshold is 0.6 (plain distance)
    assert identity_distance(extractor(monroe), reference) == pytest.approx(other**2)
