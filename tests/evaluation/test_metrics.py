"""Metrics: pure functions and their BaseMetric wrappers (L1, LPIPS, AKD, MKR, AED, FID)."""

import numpy as np
import pytest
import torch
from evaluation_helpers import MeanColourIdentity, ShiftExtractor, marked_frames
from mmengine.evaluator import Evaluator

from lmtk.evaluation.extractors import IdentityEmbedding, Keypoints
from lmtk.evaluation.metrics import (
    AED,
    AKD,
    L1,
    LPIPS,
    MKR,
    VideoFID,
    average_keypoint_distance,
    build_lpips_network,
    feature_statistics,
    frechet_distance,
    identity_distance,
    l1_distance,
    lpips_distance,
    missing_keypoint_rate,
)
from lmtk.registry import build, list_components

NAMES = ["lmtk.AED.v1", "lmtk.AKD.v1", "lmtk.L1.v1", "lmtk.LPIPS.v1", "lmtk.MKR.v1", "lmtk.VideoFID.v1"]


def _video(seed, frames=6, size=32):
    return torch.rand(frames, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_registered_names():
    found = list_components()
    assert set(NAMES) <= set(found["metrics"])
    assert {"lmtk.Dlib68.v1", "lmtk.SyntheticKeypoints.v1"} <= set(found["keypoint_extractors"])
    assert "lmtk.DlibFace.v1" in found["identity_extractors"]


def test_l1_of_a_video_against_itself_is_zero_and_measured_on_unit_range():
    video = _video(0)
    assert l1_distance(video, video).abs().max() == 0
    # a difference of 0.5 in [-1, 1] is 0.25 on [0, 1]; the fake side is clamped first
    assert torch.allclose(
        l1_distance(torch.full((1, 3, 4, 4), 3.0), torch.full((1, 3, 4, 4), 0.5)), torch.tensor([0.25])
    )
    metric = build(dict(type="lmtk.L1.v1"))
    metric.process(
        None, [{"fake": video, "real": video, "video": "a"}, {"fake": video[0], "real": -video[0]}]
    )
    result = metric.compute_metrics(metric.results)
    expected = l1_distance(video[:1], -video[:1]).item() / 7
    assert result["l1_frames"] == 7 and result["l1"] == pytest.approx(expected, rel=1e-6)


def test_metric_accepts_uint8_frames_and_runs_in_an_mmengine_evaluator():
    frames = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    evaluator = Evaluator([L1()])
    evaluator.process(data_samples=[{"fake": frames, "real": frames}])
    assert evaluator.evaluate(1) == {"l1": 0.0, "l1_frames": 3}


def test_lpips_random_backbone_is_zero_for_identical_images_only():
    metric = build(dict(type="lmtk.LPIPS.v1", pretrained=False))
    video = _video(1, frames=2, size=64)
    assert lpips_distance(video, video, metric.network).abs().max() == 0
    assert (lpips_distance(video, _video(2, frames=2, size=64), metric.network) > 0).all()
    metric.process(None, [{"fake": video, "real": video}, {"fake": video, "real": -video}])
    result = metric.compute_metrics(metric.results)
    assert result["lpips_frames"] == 4 and result["lpips"] > 0


def test_lpips_missing_weights_error_names_the_path_and_the_alternative(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError) as error:
        LPIPS()
    message = str(error.value)
    assert str(tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth") in message
    assert "pretrained=False" in message


def test_lpips_loads_a_torchvision_alexnet_state_dict(tmp_path):
    from torchvision.models import alexnet

    torch.manual_seed(3)
    features = alexnet().features.state_dict()
    torch.save({f"features.{k}": v for k, v in features.items()}, tmp_path / "alexnet.pth")
    network = build_lpips_network(pretrained=False, weights_path=tmp_path / "alexnet.pth")
    assert torch.equal(getattr(network.net.slice1, "0").weight, features["0.weight"])
    assert torch.equal(getattr(network.net.slice5, "10").bias, features["10.bias"])


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04 not a zip"])
def test_an_unreadable_weights_file_is_named(tmp_path, content):
    path = tmp_path / "alexnet.pth"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"cannot read the AlexNet weights {path}: the file is"):
        build_lpips_network(pretrained=False, weights_path=path)
    with pytest.raises(ValueError, match="cannot read the Inception-v3 weights"):
        VideoFID(feature_network="inception_v3", weights_path=path)


def test_akd_of_a_video_against_itself_is_zero_and_a_known_shift_is_recovered():
    extractor = ShiftExtractor()
    real = marked_frames(4)
    metric = AKD(extractor=extractor)
    metric.process(None, [{"fake": real, "real": real}])
    assert metric.compute_metrics(metric.results) == {"akd": 0.0, "akd_frames": 4}

    # mean absolute coordinate difference by default, the Euclidean distance on request
    shifted = [{"fake": marked_frames(4, shifts=[(3, 4)] * 4), "real": real}]
    metric, euclidean = AKD(extractor=extractor), AKD(extractor=extractor, euclidean=True)
    for each in (metric, euclidean):
        each.process(None, shifted)
    assert metric.compute_metrics(metric.results)["akd"] == pytest.approx(3.5)
    assert euclidean.compute_metrics(euclidean.results)["akd"] == pytest.approx(5.0)


def test_akd_and_mkr_find_each_frame_once_at_a_large_batch():
    from lmtk.evaluation.extractors import KeypointExtractor

    class CountingExtractor(KeypointExtractor):
        calls = 0

        def detect(self, image):
            CountingExtractor.calls += 1
            return Keypoints(np.zeros((3, 2)))

    extractor = CountingExtractor()
    sample = {"fake": _video(1, frames=64, size=8), "real": _video(2, frames=64, size=8)}
    for metric in (AKD(extractor=extractor), MKR(extractor=extractor)):
        metric.process(None, [sample])
    assert CountingExtractor.calls == 128  # 64 generated and 64 real frames, each once for both metrics


def test_akd_function_uses_only_keypoints_detected_in_both():
    real = Keypoints(np.zeros((2, 2)), detected=[True, False])
    fake = Keypoints(np.array([[6.0, 8.0], [100.0, 100.0]]))
    assert average_keypoint_distance([fake, None], [real, real]) == 7.0
    assert average_keypoint_distance([fake, None], [real, real], euclidean=True) == 10.0
    guessed = Keypoints(fake.points, detected=False)  # a fallback guess counts only on request
    assert np.isnan(average_keypoint_distance([guessed], [real]))
    assert average_keypoint_distance([guessed], [real], include_undetected=True) == 7.0


def _fomm_keypoint_scores(gt, prediction):
    """FOMM's pose-evaluation ``cmp_with_missing.py`` on ``(T, K, 2)`` arrays, -1 marking a missing point."""
    scores, missing = [], []
    for truth, predicted in zip(gt, prediction):
        missing_gt, missing_prediction = truth[:, 0] == -1, predicted[:, 0] == -1
        present = ~missing_gt & ~missing_prediction
        present_gt = len(truth) - missing_gt.sum()
        if present_gt:
            missing.append((~missing_gt & missing_prediction).sum() / present_gt)
        if present.sum():
            scores.append(np.mean(np.abs(truth[present] - predicted[present]).astype(float)))
    return np.mean(scores), np.mean(missing)


def test_akd_and_mkr_follow_the_published_evaluation_code():
    rng = np.random.default_rng(0)
    gt, prediction = rng.uniform(0, 64, (2, 6, 18, 2))
    gt[0, 2:] = -1  # frame 0: only two real keypoints
    prediction[0, :2] = -1  # ... both lost
    prediction[3, 5:] = -1
    prediction[4] = -1  # a lost face
    real = [Keypoints(np.clip(f, 0, None), detected=f[:, 0] != -1) for f in gt]
    fake = [Keypoints(np.clip(f, 0, None), detected=f[:, 0] != -1) for f in prediction]
    akd, mkr = _fomm_keypoint_scores(gt, prediction)
    assert average_keypoint_distance(fake, real) == pytest.approx(akd)
    assert missing_keypoint_rate(fake, real) == pytest.approx(mkr)
    # the pooled rate weighs frames by their keypoints: frame 0's two lost points count for little
    pooled = (2 + 13 + 18) / (2 + 5 * 18)
    assert missing_keypoint_rate(fake, real, pooled=True) == pytest.approx(pooled) != pytest.approx(mkr)


def test_mkr_counts_frames_where_the_generated_video_loses_the_keypoints():
    extractor = ShiftExtractor()
    real = marked_frames(4)
    fake = marked_frames(4, lost={1})
    akd, mkr = AKD(extractor=extractor), MKR(extractor=extractor)
    for metric in (akd, mkr):
        metric.process(None, [{"fake": fake, "real": real, "video": "v"}])
    assert mkr.compute_metrics(mkr.results) == {
        "mkr": 0.25,
        "mkr_pooled": 0.25,
        "mkr_frames": 4,
        "mkr_keypoints": 12,
        "mkr_frames_lost": 1,
    }
    # the lost frame is not a distance
    assert akd.compute_metrics(akd.results) == {"akd": 0.0, "akd_frames": 3}
    # keypoints the real frame lacks are not missing in the generated one
    assert np.isnan(missing_keypoint_rate([None], [None]))
    undetected = Keypoints(np.zeros((3, 2)), detected=False)
    assert np.isnan(missing_keypoint_rate([Keypoints(np.zeros((3, 2)))], [undetected]))


class FirstKeypointsOnly(ShiftExtractor):
    """:class:`ShiftExtractor` whose frames with red value ``n > 0`` have only their first ``n``
    keypoints detected."""

    def detect(self, image):
        keypoints = super().detect(image)
        count = int(image[0, 0, 0])
        if keypoints is None or not count:
            return keypoints
        return Keypoints(keypoints.points, detected=np.arange(len(keypoints)) < count)


def test_mkr_metric_averages_frame_rates_and_reports_the_pooled_rate():
    real = marked_frames(3, shifts=[(1, 0), (0, 0), (0, 0)])  # 1, 3 and 3 real keypoints
    fake = marked_frames(3, lost={0})
    mkr = MKR(extractor=FirstKeypointsOnly())
    mkr.process(None, [{"fake": fake, "real": real}])
    result = mkr.compute_metrics(mkr.results)
    assert result["mkr"] == pytest.approx(1 / 3)  # frame rates 1, 0 and 0
    assert result["mkr_pooled"] == pytest.approx(1 / 7) and result["mkr_keypoints"] == 7
    assert result["mkr_frames"] == 3 and result["mkr_frames_lost"] == 1


def test_aed_with_a_fake_identity_extractor():
    black = np.zeros((2, 8, 8, 3), np.uint8)
    grey = np.full((2, 8, 8, 3), 100, np.uint8)
    lighter = np.full((2, 8, 8, 3), 104, np.uint8)
    metric = AED(extractor=MeanColourIdentity())
    metric.process(None, [{"fake": lighter, "real": grey}, {"fake": grey, "real": black}])
    result = metric.compute_metrics(metric.results)
    assert result["aed_frames"] == 2  # frames with no real face do not count
    assert metric.caveat(result, num_frames=4) == "from 2 of 4 frames"
    assert metric.caveat(result, num_frames=2) is None
    # the squared distance by default, as the published evaluation code: np.sum(np.abs(a - b) ** 2)
    assert result["aed"] == pytest.approx(np.sum(np.abs(np.full(3, 104.0) - 100.0) ** 2))
    plain = AED(extractor=MeanColourIdentity(), squared=False)
    plain.process(None, [{"fake": lighter[0], "real": grey[0]}])
    assert plain.compute_metrics(plain.results)["aed"] == pytest.approx(np.sqrt(48.0))
    embedding = IdentityEmbedding(np.array([3.0, 4.0]))
    assert identity_distance(embedding, IdentityEmbedding(np.zeros(2))) == 25.0
    assert identity_distance(embedding, IdentityEmbedding(np.zeros(2)), squared=False) == 5.0


def test_frechet_distance_of_known_gaussians():
    assert frechet_distance(np.zeros(2), np.eye(2), np.array([3.0, 4.0]), np.eye(2)) == pytest.approx(25.0)
    # 1-d: (sigma1 - sigma2)^2 with sigma 1 and 2
    assert frechet_distance(np.zeros(1), np.eye(1), np.zeros(1), 4 * np.eye(1)) == pytest.approx(1.0)


def test_fid_of_a_set_against_itself_is_about_zero():
    features = np.random.default_rng(0).normal(size=(64, 8)) @ np.random.default_rng(1).normal(size=(8, 8))
    assert frechet_distance(*feature_statistics(features), *feature_statistics(features)) < 1e-8

    def colour_features(frames):  # a 6-d frame feature: mean and spread of each channel
        return torch.cat([frames.mean(dim=(2, 3)), frames.std(dim=(2, 3))], dim=1)

    video = _video(4, frames=12)
    metric = VideoFID(feature_network=colour_features)
    metric.process(None, [{"fake": video, "real": video, "video": "a"}])
    result = metric.compute_metrics(metric.results)
    assert result["fid"] < 1e-8 and result["fid_samples_fake"] == 12
    metric.process(None, [{"fake": video, "real": _video(5, frames=12) * 0.5, "video": "a"}])
    assert metric.compute_metrics(metric.results)["fid"] > 0.01


def test_video_fid_cuts_clips_per_video_and_limits_frames():
    class ClipFeatures:
        clip_length = 4

        def __call__(self, clips):
            assert clips.dim() == 5 and clips.shape[1] == 4
            return clips.mean(dim=(1, 3, 4))

    metric = VideoFID(feature_network=ClipFeatures(), max_frames_per_video=10)
    for name in ("a", "b"):
        video = _video(len(name) + ord(name), frames=12)
        # frames arrive over several samples, as the protocols send them
        metric.process(None, [{"fake": video[:3], "real": video[:3], "video": name}])
        metric.process(None, [{"fake": video[3:], "real": video[3:], "video": name}])
    result = metric.compute_metrics(metric.results)
    assert result["fid_samples_fake"] == 4  # 10 frames per video -> 2 clips of 4, twice
    assert result["fid"] < 1e-8
    # 4 samples of 3-d features (a clip's channel means) are more than the dimensions
    assert metric.caveat(result, num_frames=24) is None
    assert "from 3 samples of 3-d features" in metric.caveat({**result, "fid_samples_real": 3}, 24)
    # the cap counts frames per video, which needs the video's name
    with pytest.raises(ValueError, match="needs its 'video' name"):
        metric.process(None, [{"fake": video, "real": video}])
    uncapped = VideoFID(feature_network=ClipFeatures(), max_frames_per_video=None)
    uncapped.process(None, [{"fake": video, "real": video}])
    assert uncapped.compute_metrics(uncapped.results)["fid_samples_fake"] == 3


def test_fid_missing_weights_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="pretrained=False"):
        VideoFID(feature_network="inception_v3")
    with pytest.raises(ValueError, match="inception_v3"):
        VideoFID(feature_network="vgg")
