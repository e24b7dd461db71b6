"""``lmtk.VideoFID.v1``: Fréchet distance between feature statistics of generated and real videos.

``FID = |mu_f - mu_r|^2 + tr(S_f + S_r - 2 (S_f S_r)^(1/2))`` over features of generated and real
frames (Inception-v3) or 16-frame clips (R3D-18), see :mod:`.fid_features`. Only the first
``max_frames_per_video`` frames of each video are used (100 in the paper). The matrix square root is
taken through symmetric eigendecompositions, which stays real and stable for the rank-deficient
covariances of small evaluations.

Example:
    >>> features = np.random.default_rng(0).normal(size=(500, 4))
    >>> round(frechet_distance(*feature_statistics(features), *feature_statistics(features)), 6)
    0.0
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ...registry import metrics
from .base import FrameMetric
from .fid_features import build_feature_network

__all__ = ["VideoFID", "feature_statistics", "frechet_distance"]


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` of ``(N, D)`` features, N >= 2."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need (N >= 2, D) features, got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance of two Gaussians; ``tr((S1 S2)^(1/2)) = tr((S1^(1/2) S2 S1^(1/2))^(1/2))``."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"statistics differ in shape: {mu1.shape} {sigma1.shape} vs {mu2.shape} {sigma2.shape}"
        )
    root = _psd_sqrt(sigma1)
    middle = root @ sigma2 @ root
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * cross, 0.0))


@metrics.register("lmtk.VideoFID.v1")
class VideoFID(FrameMetric):
    """Video FID with a configurable feature network (paper Table 2 used a 3D ResNeXt-101).

    Args:
        feature_network: ``"inception_v3"`` (frames), ``"r3d_18"`` (16-frame clips), a config of a
            registered component, or a module / callable mapping frames ``(N, 3, H, W)`` (or clips
            ``(N, T, 3, H, W)`` when it has a ``clip_length`` attribute) to ``(N, D)`` features.
        pretrained, weights_path: weights of a named network (see :mod:`.fid_features`).
        max_frames_per_video: frames of each video that count (by the sample's ``video`` name); None: all.
        device: where the network runs.
        batch_size: frames (or clips) per network call.

    Frames of a video arrive in order, possibly over several samples; clips are cut from consecutive
    frames of one video, and a last incomplete clip is dropped.
    """

    name = "fid"
    per_video = False
    transfer_reference = "driving"
    empty_reason = "FID needs at least 2 feature vectors of generated and of real videos"

    def __init__(
        self,
        feature_network: str | Mapping | nn.Module | Callable = "inception_v3",
        pretrained: bool = True,
        weights_path: str | os.PathLike | None = None,
        max_frames_per_video: int | None = 100,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.network = build_feature_network(feature_network, pretrained, weights_path)
        if isinstance(self.network, nn.Module):
            self.network = self.network.to(device).eval()
        self.device = torch.device(device)
        self.clip_length = getattr(self.network, "clip_length", None)
        if self.clip_length:
            self.empty_reason += f" (each clip needs {self.clip_length} frames of one video)"
        self.max_frames_per_video = max_frames_per_video
        self.batch_size = batch_size
        self._seen: dict[str, int] = {}
        self._pending: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}

    @torch.no_grad()
    def _features(self, inputs: torch.Tensor) -> np.ndarray:
        out = [self.network(batch.to(self.device)).float().cpu() for batch in inputs.split(self.batch_size)]
        return torch.cat(out).flatten(1).numpy().astype(np.float64)

    def evaluate_frames(
        self, fake: torch.Tensor, real: torch.Tensor, sample: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        if "video" not in sample and self.max_frames_per_video is not None:
            raise ValueError(
                f"VideoFID counts at most max_frames_per_video={self.max_frames_per_video} frames of each "
                "video, so every data sample needs its 'video' name; add it, or pass "
                "max_frames_per_video=None to use every frame"
            )
        video = str(sample.get("video", ""))
        seen = self._seen.get(video, 0)
        keep = len(fake) if self.max_frames_per_video is None else max(0, self.max_frames_per_video - seen)
        fake, real = fake[:keep].cpu(), real[:keep].cpu()
        self._seen[video] = seen + len(fake)
        if not len(fake):
            return []
        if self.clip_length is None:
            return [{"fake": self._features(fake), "real": self._features(real)}]
        fakes, reals = self._pending.setdefault(video, ([], []))
        fakes.extend(fake)
        reals.extend(real)
        complete = len(fakes) // self.clip_length * self.clip_length
        if not complete:
            return []
        clips = [
            torch.stack(frames[:complete]).unflatten(0, (-1, self.clip_length)) for frames in (fakes, reals)
        ]
        del fakes[:complete], reals[:complete]
        return [{"fake": self._features(clips[0]), "real": self._features(clips[1])}]

    def compute_metrics(self, results: list) -> dict[str, float]:
        # an evaluation ends here: the next one counts frames and cuts clips afresh
        self._seen.clear()
        self._pending.clear()
        return super().compute_metrics(results)

    def reduce(self, entries: list[dict[str, Any]]) -> dict[str, float]:
        fake = [r["fake"] for r in entries]
        real = [r["real"] for r in entries]
        fake = np.concatenate(fake) if fake else np.zeros((0, 1))
        real = np.concatenate(real) if real else np.zeros((0, 1))
        counts = {
            "fid_samples_fake": len(fake),
            "fid_samples_real": len(real),
            "fid_feature_dim": fake.shape[1],
        }
        if len(fake) < 2 or len(real) < 2:
            return {"fid": float("nan"), **counts}
        return {"fid": frechet_distance(*feature_statistics(fake), *feature_statistics(real)), **counts}

    def caveat(self, values: Mapping[str, float], num_frames: int) -> str | None:
        # fewer samples than feature dimensions leave the covariances singular: the value is unstable
        samples = int(min(values["fid_samples_fake"], values["fid_samples_real"]))
        dim = int(values["fid_feature_dim"])
        if samples <= dim:
            return f"from {samples} samples of {dim}-d features: too few for a stable estimate"
        return None
