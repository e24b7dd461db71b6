"""Direction analysis: correlations on known arrays, the orthogonality error, magnitudes of real clips."""

import numpy as np
import pytest
import torch

from lmtk.datasets.video_reader import find_videos
from lmtk.evaluation.direction_analysis import (
    _pil_heatmap,
    best_matching_factors,
    collect_magnitudes,
    correlation_markdown,
    correlation_matrix,
    orthogonality_error,
    plot_correlation_heatmap,
    write_correlation_csv,
)


def test_a_magnitude_that_is_a_linear_function_of_one_factor_has_r_of_one():
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(200, 3))
    magnitudes = np.stack([2.5 * factors[:, 1] - 4, -0.3 * factors[:, 2], rng.normal(size=200)], axis=1)
    r = correlation_matrix(magnitudes, factors)
    assert r.shape == (3, 3)
    assert r[0, 1] == pytest.approx(1.0) and r[1, 2] == pytest.approx(-1.0)
    assert abs(r[0, 0]) < 0.2 and abs(r[2]).max() < 0.3
    best = best_matching_factors(r, ["a", "b", "c"])
    assert best[0][1] == "b" and best[1][1] == "c"


def test_constant_columns_give_nan_and_per_video_centring_removes_offsets():
    factor = np.tile(np.linspace(0, 1, 10), 2)
    groups = np.repeat([0, 1], 10)
    # within each clip the magnitude follows the factor, but the clips sit at very different offsets
    magnitude = factor + np.where(groups == 1, -5.0, 0.0)
    x = np.stack([magnitude, np.ones(20)], axis=1)
    global_r = correlation_matrix(x, factor[:, None])
    assert global_r[0, 0] < 0.5 and np.isnan(global_r[1, 0])
    assert correlation_matrix(x, factor[:, None], groups)[0, 0] == pytest.approx(1.0)
    assert best_matching_factors(global_r, ["f"])[1][1] == "-"


def test_orthogonality_error():
    q, _ = torch.linalg.qr(torch.randn(16, 4, generator=torch.Generator().manual_seed(0)))
    assert orthogonality_error(q) < 1e-6
    assert orthogonality_error(2 * q) == pytest.approx(6.0, rel=1e-6)  # ||4I - I||_F over 4 columns


def test_tables_and_heatmaps_are_written(tmp_path):
    r = np.array([[0.9, -0.1], [np.nan, 0.5]])
    text = correlation_markdown(r, ["turn", "blink"])
    assert "| d0 | +0.90 | -0.10 | turn (+0.90) |" in text and "n/a" in text
    write_correlation_csv(r, ["turn", "blink"], tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text().splitlines()[1].startswith("d0,0.900000,-0.100000,turn")
    plot_correlation_heatmap(r, ["turn", "blink"], tmp_path / "r.png", title="t")
    _pil_heatmap(r, ["turn", "blink"], tmp_path / "pil.png")
    from PIL import Image

    assert Image.open(tmp_path / "r.png").size[0] > 50 and Image.open(tmp_path / "pil.png").size[0] > 50


def test_collect_magnitudes_of_synthetic_clips(tiny_model, synthetic_root):
    data = collect_magnitudes(tiny_model, find_videos(synthetic_root / "test"), batch_size=5, max_frames=6)
    assert data.magnitudes.shape == (12, 5) and data.factors.shape == (12, 10)
    assert data.factor_names[:2] == ["tx", "ty"] and data.video_index.tolist() == [0] * 6 + [1] * 6
    with pytest.raises(FileNotFoundError, match="synthetic"):
        collect_magnitudes(tiny_model, [synthetic_root / "missing.mp4"])


def test_suggested_direction_names_take_clear_one_to_one_matches():
    from lmtk.evaluation.direction_analysis import suggested_direction_names

    correlation = np.array(
        [
            [0.9, 0.1, 0.0],  # d0 follows yaw
            [0.2, -0.8, 0.6],  # d1 follows pitch (negatively) more than mouth
            [0.1, 0.1, np.nan],  # d2 follows nothing
            [0.3, 0.0, 0.4],  # d3: mouth's best, but below the bar
        ]
    )
    assert suggested_direction_names(correlation, ["yaw", "pitch", "mouth"]) == {"yaw": 0, "pitch": 1}
    # mouth's best direction (d1) is pitch's: not named twice
    assert suggested_direction_names(correlation, ["yaw", "pitch", "mouth"], min_abs_r=0.35) == {
        "yaw": 0,
        "pitch": 1,
    }
