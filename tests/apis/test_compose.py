"""The composed animation the tool and the studio write: notes, crops, side-by-side and paste-back."""

import numpy as np
import pytest
from tiny_models import SIZE

from lmtk.apis import Animator, compose
from lmtk.apis.compose import FaceCropUnavailable, animate_composed

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def driving():
    return np.random.default_rng(1).integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8)


def test_paste_back_without_a_face_goes_into_the_fitted_square(model, driving, monkeypatch):
    monkeypatch.setattr(compose, "face_box_for_image", lambda image, margin: None)
    wall = np.random.default_rng(0).integers(0, 256, (41, 60, 3), dtype=np.uint8)  # odd height
    notes = []
    frames = list(
        animate_composed(
            Animator(model, resize="crop"),
            wall,
            driving,
            crop_source=True,
            paste_back=True,
            note=notes.append,
        )
    )
    assert notes == ["no face found in the source: the whole image is used"]
    assert len(frames) == 5 and frames[0].shape == (40, 60, 3)  # the source's size, sides made even
    # the animator used the centred 41 x 41 square: the strips beside it are the source's own
    np.testing.assert_array_equal(frames[0][:, :9], wall[:40, :9])
    np.testing.assert_array_equal(frames[0][:, -9:], wall[:40, -9:])
    assert np.abs(frames[0][:, 12:48].astype(int) - wall[:40, 12:48]).mean() > 10


def test_side_by_side_and_the_automatic_start_frame_is_noted(model, driving):
    notes = []
    source = np.random.default_rng(2).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    frames = list(
        animate_composed(
            Animator(model), source, driving, start_frame="auto", side_by_side=True, note=notes.append
        )
    )
    assert len(notes) == 1 and notes[0].startswith("start frame: ")
    assert frames[0].shape == (SIZE, 3 * SIZE, 3)
    np.testing.assert_array_equal(frames[1][:, SIZE : 2 * SIZE], driving[1])


def test_a_face_detector_that_cannot_run_is_one_error(model, driving, monkeypatch):
    def missing(image, margin):
        raise ImportError("face detection needs dlib")

    monkeypatch.setattr(compose, "face_box_for_image", missing)
    with pytest.raises(FaceCropUnavailable, match="face crop is unavailable: face detection needs dlib"):
        animate_composed(Animator(model), driving[0], driving, crop_source=True)
