"""Reconstruction and transfer protocols on a tiny model and a tiny synthetic test split."""

import csv
import json

import numpy as np
import pytest

from lmtk.datasets.video_reader import find_videos, open_video
from lmtk.evaluation.extractors import SyntheticKeypoints
from lmtk.evaluation.metrics import AKD, L1, MKR
from lmtk.evaluation.protocols import (
    EvaluationResult,
    evaluate_reconstruction,
    evaluate_transfer,
    transfer_pairs,
)
from lmtk.evaluation.reconstruction import reconstruct_video

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def videos(synthetic_root):
    return find_videos(synthetic_root / "test")


def _metrics():
    extractor = SyntheticKeypoints()
    return [L1(), AKD(extractor=extractor), MKR(extractor=extractor)]


def test_reconstruction_matches_reconstruct_video_and_writes_results(tiny_model, videos, tmp_path):
    result = evaluate_reconstruction(tiny_model, videos, _metrics(), batch_size=5, save_dir=tmp_path)
    assert [row["video"] for row in result.per_video] == ["id0000#00", "id0001#00"]
    assert [row["num_frames"] for row in result.per_video] == [8, 8]
    # the protocol's L1 is the same number as the standalone reconstruction (first frame as source)
    for path, row in zip(videos, result.per_video):
        expected, _ = reconstruct_video(tiny_model, path, batch_size=8)
        assert row["l1"] == pytest.approx(expected["l1"], rel=1e-4)
    assert result.summary["l1"] == pytest.approx(sum(r["l1"] for r in result.per_video) / 2, rel=1e-6)
    assert result.summary["mkr_keypoints"] > 0  # the synthetic ground truth was used
    assert all(len(open_video(tmp_path / f"{row['video']}.mp4")) == 8 for row in result.per_video)

    json_path, csv_path = result.write(tmp_path / "out")
    written = json.loads(json_path.read_text())
    assert written["num_frames"] == 16 and written["metrics"]["l1"] == pytest.approx(result.summary["l1"])
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["video"] for r in rows] == ["id0000#00", "id0001#00"] and float(rows[0]["l1"]) > 0
    assert "L1" in result.format_table() and "AKD" in result.format_table()


def test_reconstruction_can_leave_out_the_source_frame(tiny_model, videos):
    result = evaluate_reconstruction(
        tiny_model, videos[:1], [L1()], batch_size=8, max_frames=4, skip_source_frame=True
    )
    assert result.per_video[0]["num_frames"] == 3 and result.summary["l1_frames"] == 3


def test_a_value_measured_on_part_of_the_frames_says_so(tiny_model, videos):
    class EvenFramesL1(L1):  # as a keypoint metric that finds keypoints in every other frame only
        def evaluate_frames(self, fake, real, sample):
            return super().evaluate_frames(fake, real, sample)[::2]

    result = evaluate_reconstruction(tiny_model, videos, [EvenFramesL1()], batch_size=8)
    assert result.notes == {"l1": "from 8 of 16 frames"}
    assert result.format_table().splitlines()[2].endswith("  (from 8 of 16 frames)")
    assert evaluate_reconstruction(tiny_model, videos, [L1()], batch_size=8).notes == {}


def test_ground_truth_shorter_than_the_video_is_refused_by_name(tiny_model, videos):
    def five_frames(path, size):
        return np.zeros((5, 12, 2))

    with pytest.raises(ValueError, match=rf"keypoints of {videos[0]} cover 5 frames, but 8 are evaluated"):
        evaluate_reconstruction(tiny_model, videos[:1], [L1()], ground_truth=five_frames)
    result = evaluate_reconstruction(tiny_model, videos[:1], [L1()], max_frames=5, ground_truth=five_frames)
    assert result.summary["l1_frames"] == 5


def test_transfer_reports_ground_truth_metrics_as_not_applicable(tiny_model, videos):
    result = evaluate_transfer(
        tiny_model, videos, _metrics(), num_pairs=2, seed=1, batch_size=8, max_frames=3
    )
    assert "ground truth" in result.notes["l1"] and "l1" not in result.summary
    assert all(row["source"] != row["driving"] for row in result.per_video)
    assert result.summary["mkr_keypoints"] > 0
    assert "n/a" in result.format_table()
    assert "akd" in result.summary and "aed" not in result.summary
    written = result.to_dict()
    assert written["num_pairs"] == 2 and "num_videos" not in written


def _frames_with_a_broken_one(folder):
    """A frame folder whose frame 40 of 48 is not an image: reading fails part-way through (after the
    first chunk of 32 frames that the protocols decode)."""
    from PIL import Image

    folder.mkdir()
    for index in range(48):
        image = np.random.default_rng(index).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(image).save(folder / f"{index:03d}.png")
    (folder / "040.png").write_bytes(b"not a png")
    return folder


def test_a_video_that_cannot_be_read_is_left_out_and_the_others_kept(tiny_model, videos, tmp_path):
    # it stopped the evaluation, losing the finished videos' work
    cut = _frames_with_a_broken_one(tmp_path / "cut")
    alone = evaluate_reconstruction(tiny_model, videos, [L1()], batch_size=4)
    result = evaluate_reconstruction(tiny_model, [videos[0], cut, videos[1]], [L1()], batch_size=4)
    assert [row["video"] for row in result.per_video] == [row["video"] for row in alone.per_video]
    assert [row["video"] for row in result.unreadable] == ["cut"]
    assert (
        "Cannot read frame" in result.unreadable[0]["reason"] and "040.png" in result.unreadable[0]["reason"]
    )
    # the frames of the cut video read before the error count nowhere
    assert result.summary == pytest.approx(alone.summary, nan_ok=True)
    assert result.to_dict()["unreadable"] == result.unreadable
    transfer = evaluate_transfer(tiny_model, [videos[0], cut, videos[1]], [L1()], num_pairs=6, batch_size=4)
    # its first frame animates the others; as the driving video it breaks off
    assert len(transfer.per_video) == 4
    assert sorted(row["video"] for row in transfer.unreadable) == [f"{video.stem}_by_cut" for video in videos]
    with pytest.raises(ValueError, match="none of the 1 videos could be read"):
        evaluate_reconstruction(tiny_model, [cut], [L1()])


def test_transfer_pairs_are_seeded_and_never_pair_a_video_with_itself():
    pairs = transfer_pairs(5, num_pairs=20, seed=3)
    assert pairs == transfer_pairs(5, num_pairs=20, seed=3) != transfer_pairs(5, num_pairs=20, seed=4)
    assert all(a != b for a, b in pairs) and {a for a, _ in pairs} == set(range(5))
    with pytest.raises(ValueError, match="at least 2"):
        transfer_pairs(1)


def test_transfer_pairs_never_repeat_and_refuse_more_than_exist():
    pairs = transfer_pairs(3, num_pairs=6, seed=0)
    assert sorted(pairs) == [(a, b) for a in range(3) for b in range(3) if a != b]
    assert len(set(transfer_pairs(4, num_pairs=12, seed=5))) == 12
    assert transfer_pairs(5, num_pairs=7, seed=3) == transfer_pairs(5, num_pairs=20, seed=3)[:7]
    with pytest.raises(ValueError, match=r"4 transfer pairs asked for, but 2 videos give only 2"):
        transfer_pairs(2, num_pairs=4)


def test_table_shows_notes_on_values_and_huge_values_readably():
    result = EvaluationResult(
        protocol="recon",
        summary={"l1": 0.25, "fid": 5.3e22, "akd": float("nan")},
        per_video=[],
        notes={"fid": "random weights", "akd": "no keypoints found"},
        metric_names=["l1", "fid", "akd"],
    )
    lines = result.format_table().splitlines()[2:]
    assert lines == [
        "L1      0.2500",
        "FID     5.3000e+22  (random weights)",
        "AKD     n/a (no keypoints found)",
    ]
