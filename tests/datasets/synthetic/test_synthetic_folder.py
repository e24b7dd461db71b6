"""lmtk.SyntheticVideoPairs.v1: the folder is rendered again when the config asks for another dataset."""

import warnings

import pytest

from lmtk.datasets.synthetic import read_manifest, synthetic_video_pairs

BASE = dict(num_train=2, num_test=1, num_frames=3, size=32, seed=0, layout="video", progress=False)


def render_count(root, monkeypatch) -> list[dict]:
    """Records each render of ``root`` (the generate arguments it was given)."""
    from lmtk.datasets.synthetic import folder

    calls = []
    real = folder.make_synthetic_dataset

    def recording(path, **generate):
        calls.append(generate)
        return real(path, **generate)

    monkeypatch.setattr(folder, "make_synthetic_dataset", recording)
    return calls


@pytest.mark.parametrize(
    "change",
    [dict(num_train=3), dict(num_test=2), dict(clips_per_identity=2), dict(fps=10), dict(crf=30)],
    ids=lambda change: next(iter(change)),
)
def test_a_changed_generate_option_renders_again(tmp_path, monkeypatch, change):
    calls = render_count(tmp_path, monkeypatch)
    synthetic_video_pairs(tmp_path, size=32, generate=BASE)
    synthetic_video_pairs(tmp_path, size=32, generate=BASE)  # the same options reuse the folder
    assert len(calls) == 1
    dataset = synthetic_video_pairs(tmp_path, size=32, generate={**BASE, **change})
    assert len(calls) == 2
    manifest = read_manifest(tmp_path)
    assert len(manifest["splits"]["train"]) == len(dataset.videos) == change.get("num_train", 2)
    assert len(manifest["splits"]["test"]) == change.get("num_test", 1)
    for key in ("clips_per_identity", "fps", "crf"):
        assert manifest[key] == change.get(key, {"clips_per_identity": 1, "fps": 25, "crf": 12}[key])


def test_crf_does_not_matter_for_png_frames(tmp_path, monkeypatch):
    calls = render_count(tmp_path, monkeypatch)
    frames = {**BASE, "layout": "frames"}
    synthetic_video_pairs(tmp_path, size=32, generate=frames)
    synthetic_video_pairs(tmp_path, size=32, generate={**frames, "crf": 30})
    assert len(calls) == 1


def test_reading_clips_rendered_smaller_warns(tmp_path):
    # the quickstart's data config renders 64 px: a model.size=128 run silently trained on upscaled frames
    with pytest.warns(UserWarning, match="rendered at 32 px and read at 48 px.*set generate.size=48"):
        synthetic_video_pairs(tmp_path, size=48, generate=BASE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synthetic_video_pairs(tmp_path, size=32, generate=BASE)
        synthetic_video_pairs(tmp_path, size=16, generate=BASE)  # downscaled: a choice, not a slip
