"""``lmtk.LPIPS.v1``: learned perceptual distance (Zhang et al., 2018) with the AlexNet backbone.

The ``lpips`` package ships its linear calibration layers but takes the AlexNet backbone from
torchvision, which would download it. lmtk never downloads: the ImageNet AlexNet weights are read from
torchvision's hub cache (``torch.hub.get_dir()/checkpoints/alexnet-owt-7be5be79.pth``, where
``torchvision.models.alexnet(weights="DEFAULT")`` puts them) or from an explicit file, and a clear
FileNotFoundError says so when they are missing. ``pretrained=False`` keeps a random backbone, which
still gives 0 for identical images (for tests; the values measure nothing perceptual).

Example:
    >>> network = build_lpips_network(pretrained=False)  # doctest: +SKIP
    >>> x = torch.rand(2, 3, 64, 64) * 2 - 1  # doctest: +SKIP
    >>> lpips_distance(x, x, network).tolist()  # doctest: +SKIP
    [0.0, 0.0]
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...backbone_weights import MissingWeightsError, hub_cache_path, read_state_dict
from ...registry import metrics
from .base import FrameMetric, mean_or_nan, to_frames

__all__ = ["LPIPS", "alexnet_weights_path", "build_lpips_network", "lpips_distance"]

# Kept in sync with torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url
_FALLBACK_ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"


def _alexnet_url() -> str:
    try:
        from torchvision.models import AlexNet_Weights
    except ImportError:
        return _FALLBACK_ALEXNET_URL
    return AlexNet_Weights.IMAGENET1K_V1.url


def alexnet_weights_path() -> Path:
    """Where torchvision caches the ImageNet AlexNet weights: ``torch.hub.get_dir()/checkpoints/<file>``."""
    return hub_cache_path(_alexnet_url())


def _missing_weights(path: Path) -> MissingWeightsError:
    return MissingWeightsError(
        "AlexNet",
        "LPIPS",
        path,
        _alexnet_url(),
        f"pass weights_path='/path/to/{path.name}', or use pretrained=False for a randomly initialised "
        "backbone (tests only: the distance is then not perceptual).",
    )


@torch.no_grad()
def _load_backbone(network: nn.Module, path: Path) -> None:
    # lpips splits torchvision's alexnet().features into slices that keep the original indices as names
    state = read_state_dict(path, "AlexNet")
    missing = []
    for slice_ in (getattr(network.net, f"slice{i}") for i in range(1, network.net.N_slices + 1)):
        for index, module in slice_.named_children():
            for name, parameter in module.named_parameters(recurse=False):
                key = next((k for k in (f"features.{index}.{name}", f"{index}.{name}") if k in state), None)
                if key is None:
                    missing.append(f"features.{index}.{name}")
                else:
                    parameter.copy_(state[key])
    if missing:
        raise ValueError(f"{path} is not a torchvision AlexNet state_dict: missing {', '.join(missing)}")


def build_lpips_network(
    pretrained: bool = True, weights_path: str | os.PathLike | None = None, net: str = "alex"
) -> nn.Module:
    """The ``lpips.LPIPS`` module (eval mode, frozen) with the AlexNet backbone loaded offline.

    Args:
        pretrained: load ImageNet AlexNet weights from :func:`alexnet_weights_path` (FileNotFoundError
            when missing); False keeps a random backbone.
        weights_path: a torchvision AlexNet state_dict file, loaded whatever ``pretrained`` says.
        net: the lpips backbone; only ``"alex"`` (the paper's) is supported offline.
    """
    if net != "alex":
        raise ValueError(f"only the AlexNet backbone ('alex', as in the paper) is supported, got {net!r}")
    if weights_path is None and pretrained:
        weights_path = alexnet_weights_path()
    if weights_path is not None and not Path(weights_path).is_file():
        raise _missing_weights(Path(weights_path))
    try:
        import lpips
    except ImportError as error:
        raise ImportError("LPIPS needs the lpips package: pip install lpips") from error
    # pnet_rand builds the backbone without torchvision's download; the linear layers come from lpips
    # a random backbone is seeded, so smoke-test numbers repeat; the global RNG is left as it was
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.random.fork_rng():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        network = lpips.LPIPS(net=net, pnet_rand=True, pretrained=True, verbose=False)
    if weights_path is not None:
        _load_backbone(network, Path(weights_path))
    return network.eval().requires_grad_(False)


@torch.no_grad()
def lpips_distance(
    fake: torch.Tensor, real: torch.Tensor, network: nn.Module, batch_size: int = 32
) -> torch.Tensor:
    """Per-image LPIPS of ``(N, 3, H, W)`` images in [-1, 1] (``fake`` clamped). Returns ``(N,)``."""
    fake, real = to_frames(fake), to_frames(real)
    if fake.shape != real.shape:
        raise ValueError(f"fake and real differ in shape: {tuple(fake.shape)} vs {tuple(real.shape)}")
    device = next(network.parameters()).device
    values = [
        network(f.to(device).clamp(-1, 1), r.to(device)).flatten().float().cpu()
        for f, r in zip(fake.split(batch_size), real.split(batch_size))
    ]
    return torch.cat(values) if values else torch.zeros(0)


@metrics.register("lmtk.LPIPS.v1")
class LPIPS(FrameMetric):
    """LPIPS (AlexNet) between generated and real frames (paper Tables 1, 4, 5), averaged over frames.

    Args:
        pretrained, weights_path, net: see :func:`build_lpips_network`.
        device: where the network runs (``"cpu"``, ``"cuda"``); frames are moved there.
        batch_size: frames per network call.
    """

    name = "lpips"
    transfer_reference = None  # needs ground truth

    def __init__(
        self,
        pretrained: bool = True,
        weights_path: str | os.PathLike | None = None,
        net: str = "alex",
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.network = build_lpips_network(pretrained, weights_path, net).to(device)
        self.batch_size = batch_size

    def evaluate_frames(
        self, fake: torch.Tensor, real: torch.Tensor, sample: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        values = lpips_distance(fake, real, self.network, self.batch_size)
        return [{"lpips": value} for value in values.tolist()]

    def reduce(self, entries: list[dict[str, Any]]) -> dict[str, float]:
        return {"lpips": mean_or_nan([r["lpips"] for r in entries]), "lpips_frames": len(entries)}
