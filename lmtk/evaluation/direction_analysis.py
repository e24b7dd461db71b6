"""Which motion factor does each learned direction track? (paper §4.4 g, made quantitative)

On lmtk's synthetic faces every frame comes with the exact value of each motion factor (``tx``, ``turn``,
``blink``, ``mouth_open`` ...; see :mod:`lmtk.datasets.synthetic.motion`). For every frame ``t`` of the
test clips, the model's motion magnitudes ``A_{r->t} = (a_1 ... a_M)`` are computed and each direction's
magnitude is correlated (Pearson) with each factor over all frames. A direction that moves the mouth
should show ``|r|`` near 1 for ``mouth_open`` and near 0 elsewhere.

With ``centre_per_video`` the per-clip means are removed from magnitudes and factors before correlating,
so a factor's offset that differs between identities (or a magnitude that encodes identity) does not
count as motion.

Example:
    >>> t = np.linspace(0, 1, 50)
    >>> magnitudes = np.stack([3 * t + 1, np.sin(9 * t)], axis=1)
    >>> r = correlation_matrix(magnitudes, t[:, None])
    >>> round(float(r[0, 0]), 6), bool(abs(r[1, 0]) < 1)
    (1.0, True)
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..functional.checks import check_shape
from .extractors.synthetic import synthetic_annotation_path
from .reconstruction import iter_video_frames

__all__ = [
    "MagnitudeData",
    "best_matching_factors",
    "collect_magnitudes",
    "correlation_markdown",
    "correlation_matrix",
    "orthogonality_error",
    "plot_correlation_heatmap",
    "require_directions",
    "write_correlation_csv",
]


def require_directions(model) -> torch.Tensor:
    """The model's motion directions ``(latent_dim, M)``.

    Raises:
        ValueError: the model has no motion basis (the "w/o D_m" ablation, ``lmtk.DirectPath.v1``).
    """
    directions = model.directions()
    if directions is None:
        raise ValueError(
            "this model has no motion basis (the 'w/o D_m' ablation, lmtk.DirectPath.v1): its motion network "
            "outputs latent paths directly, so it has no directions to show or analyse"
        )
    return directions


def orthogonality_error(directions: torch.Tensor) -> float:
    """``||D^T D - I||_F`` of a ``(latent_dim, M)`` basis: 0 for orthonormal directions."""
    check_shape(directions, ["latent_dim", "M"], "directions")
    d = directions.detach().double()
    eye = torch.eye(d.shape[1], dtype=d.dtype, device=d.device)
    return float(torch.linalg.matrix_norm(d.t() @ d - eye))


@dataclass
class MagnitudeData:
    """Magnitudes and ground-truth factors of every analysed frame.

    Attributes:
        magnitudes: ``(N, M)`` motion magnitudes ``A_{r->t}``.
        factors: ``(N, F)`` ground-truth factor values.
        factor_names: the ``F`` factor names.
        video_index: ``(N,)`` which clip each frame belongs to.
        videos: clip names.
    """

    magnitudes: np.ndarray
    factors: np.ndarray
    factor_names: list[str]
    video_index: np.ndarray
    videos: list[str]


@torch.inference_mode()
def collect_magnitudes(
    model, videos: Sequence[str | os.PathLike], batch_size: int = 32, max_frames: int | None = None
) -> MagnitudeData:
    """Magnitudes of every frame of synthetic clips and the clips' motion factors (from their JSON)."""
    device = next(model.parameters()).device
    net = model.net
    magnitudes, factors, index, names, factor_names = [], [], [], [], None
    for number, video in enumerate(Path(v) for v in videos):
        annotation_path = synthetic_annotation_path(video)
        if not annotation_path.is_file():
            raise FileNotFoundError(
                f"{video} has no ground-truth annotation {annotation_path}; direction analysis needs "
                "lmtk's synthetic clips (tools/make_synthetic_dataset.py)"
            )
        params = _read_factors(annotation_path)
        factor_names = factor_names or list(params)
        count = 0
        for frames in iter_video_frames(video, model.size, chunk=batch_size, max_frames=max_frames):
            magnitudes.append(net.magnitudes(net.encode_code(frames.to(device))).float().cpu().numpy())
            count += len(frames)
        factors.append(_factor_table(params, factor_names, count, annotation_path))
        index.append(np.full(count, number))
        names.append(video.name if video.is_dir() else video.stem)
    if not magnitudes:
        raise ValueError("no videos to analyse")
    return MagnitudeData(
        np.concatenate(magnitudes).astype(np.float64),
        np.concatenate(factors),
        factor_names,
        np.concatenate(index),
        names,
    )


def _read_factors(path: Path) -> dict:
    """The ``params`` of a synthetic clip's annotation: factor name -> one value per frame."""
    render = "render the clips again with tools/make_synthetic_dataset.py"
    try:
        annotation = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"cannot read the annotation {path}: it is not JSON ({error}); {render}") from None
    params = annotation.get("params") if isinstance(annotation, dict) else None
    if not isinstance(params, dict) or not params:
        raise ValueError(f"the annotation {path} has no 'params' (each frame's motion factors); {render}")
    return params


def _factor_table(params: dict, names: Sequence[str], count: int, path: Path) -> np.ndarray:
    """``(count, F)`` values of the factors ``names``; a missing factor or a short list names the file."""
    try:
        columns = [np.asarray(params[name], np.float64)[:count] for name in names]
    except KeyError as error:
        raise ValueError(f"the annotation {path} lacks the motion factor {error}") from None
    except (TypeError, ValueError) as error:
        raise ValueError(f"the annotation {path} has motion factors that are not numbers: {error}") from None
    short = [name for name, column in zip(names, columns) if column.shape != (count,)]
    if short:
        raise ValueError(
            f"the annotation {path} covers fewer frames than the clip ({count}) for {', '.join(short)}"
        )
    return np.stack(columns, 1)


def _centre(values: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    values = np.asarray(values, np.float64)
    if groups is None:
        return values - values.mean(axis=0)
    out = values.copy()
    for group in np.unique(groups):
        rows = groups == group
        out[rows] -= values[rows].mean(axis=0)
    return out


def correlation_matrix(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation ``(M, F)`` of every column of ``x`` ``(N, M)`` with every column of ``y`` ``(N, F)``.

    ``groups`` ``(N,)``: centre each group separately (per-video centring). Constant columns give NaN.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    check_shape(x, ["N", "M"], "x")
    check_shape(y, ["N", "F"], "y")
    if len(x) != len(y):
        raise ValueError(f"x and y must have one N, got {x.shape} and {y.shape}")
    x, y = _centre(x, groups), _centre(y, groups)
    norms = np.outer(np.linalg.norm(x, axis=0), np.linalg.norm(y, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (x.T @ y) / norms
    r[norms <= 1e-12 * max(1.0, float(norms.max(initial=0.0)))] = np.nan
    return np.clip(r, -1.0, 1.0)


def best_matching_factors(
    correlation: np.ndarray, factor_names: Sequence[str]
) -> list[tuple[int, str, float]]:
    """For each direction (row): ``(index, factor with the largest |r|, r)``; ``("-", nan)`` if all NaN."""
    out = []
    for row, values in enumerate(np.asarray(correlation)):
        if np.all(np.isnan(values)):
            out.append((row, "-", float("nan")))
            continue
        best = int(np.nanargmax(np.abs(values)))
        out.append((row, factor_names[best], float(values[best])))
    return out


def suggested_direction_names(
    correlation: np.ndarray, factor_names: Sequence[str], min_abs_r: float = 0.5
) -> dict[str, int]:
    """``{factor: direction}``: for each factor, the direction that follows it best, if ``|r| >= min_abs_r``
    and no other factor claims that direction more strongly. A model's ``direction_names`` (docs/liax.md)."""
    correlation = np.abs(np.nan_to_num(np.asarray(correlation, dtype=float)))
    names = {}
    for column, factor in enumerate(factor_names):
        row = int(np.argmax(correlation[:, column]))
        if correlation[row, column] >= min_abs_r and np.argmax(correlation[row]) == column:
            names[factor] = row
    return names


def _row_labels(count: int) -> list[str]:
    return [f"d{i}" for i in range(count)]


def correlation_markdown(correlation: np.ndarray, factor_names: Sequence[str]) -> str:
    """A markdown table: one row per direction, one column per factor, and the best match."""
    best = best_matching_factors(correlation, factor_names)
    header = "| direction | " + " | ".join(factor_names) + " | best |"
    lines = [header, "|" + "---|" * (len(factor_names) + 2)]
    for label, values, (_, name, r) in zip(_row_labels(len(correlation)), correlation, best):
        cells = " | ".join("n/a" if np.isnan(v) else f"{v:+.2f}" for v in values)
        lines.append(f"| {label} | {cells} | {name} ({'n/a' if np.isnan(r) else f'{r:+.2f}'}) |")
    return "\n".join(lines) + "\n"


def write_correlation_csv(
    correlation: np.ndarray, factor_names: Sequence[str], path: str | os.PathLike
) -> None:
    """The correlation matrix as CSV (empty cells for NaN), with the best match per direction."""
    best = best_matching_factors(correlation, factor_names)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["direction", *factor_names, "best_factor", "best_r"])
        for label, values, (_, name, r) in zip(_row_labels(len(correlation)), correlation, best):
            cells = ["" if np.isnan(v) else f"{v:.6f}" for v in values]
            writer.writerow([label, *cells, name, "" if np.isnan(r) else f"{r:.6f}"])


def plot_correlation_heatmap(
    correlation: np.ndarray, factor_names: Sequence[str], path: str | os.PathLike, title: str = ""
) -> None:
    """A red-blue heatmap of ``r`` (directions x factors) as PNG: matplotlib if installed, else PIL."""
    correlation = np.asarray(correlation, np.float64)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _pil_heatmap(correlation, factor_names, path)
        return
    rows, cols = correlation.shape
    figure, axes = plt.subplots(figsize=(1.0 + 0.7 * cols, 1.2 + 0.32 * rows))
    image = axes.imshow(np.ma.masked_invalid(correlation), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    axes.set_xticks(range(cols), factor_names, rotation=45, ha="right")
    axes.set_yticks(range(rows), _row_labels(rows))
    if rows * cols <= 400:
        for (i, j), value in np.ndenumerate(correlation):
            if not np.isnan(value):
                color = "white" if abs(value) > 0.6 else "black"
                axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    figure.colorbar(image, ax=axes, label="Pearson r")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _pil_heatmap(correlation: np.ndarray, factor_names: Sequence[str], path: str | os.PathLike) -> None:
    from PIL import Image, ImageDraw

    cell, left, top = 28, 40, 70
    rows, cols = correlation.shape
    image = Image.new("RGB", (left + cols * cell + 4, top + rows * cell + 4), "white")
    draw = ImageDraw.Draw(image)
    for (i, j), value in np.ndenumerate(correlation):
        if np.isnan(value):
            color = (200, 200, 200)
        else:  # white at 0, red for +1, blue for -1
            fade = int(255 * (1 - abs(value)))
            color = (255, fade, fade) if value > 0 else (fade, fade, 255)
        x, y = left + j * cell, top + i * cell
        draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=color)
    for j, name in enumerate(factor_names):
        draw.text((left + j * cell + 2, 4 + (j % 4) * 15), name[:10], fill="black")
    for i, label in enumerate(_row_labels(rows)):
        draw.text((4, top + i * cell + 8), label, fill="black")
    image.save(path)
