"""Feature networks for :class:`~.fid.VideoFID`: frame features (Inception-v3) or clip features (R3D-18).

Both are torchvision models whose ImageNet / Kinetics weights are read from torchvision's hub cache or
an explicit file, never downloaded; ``pretrained=False`` gives a random network (tests only). A network
takes ``(N, 3, H, W)`` frames (``clip_length`` None) or ``(N, T, 3, H, W)`` clips (``clip_length`` T) in
[-1, 1] and returns ``(N, D)`` features.

The paper's video FID used a Kinetics ResNeXt-101 3D network on 16-frame clips (Wang et al., 2020);
R3D-18 is the closest one torchvision offers. Inception-v3 here is torchvision's port, not the TF graph
of the usual FID code, so values are comparable between lmtk runs only.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...backbone_weights import MissingWeightsError, hub_cache_path, read_state_dict
from ...functional.checks import check_shape
from ...registry import build

__all__ = ["FEATURE_NETWORKS", "InceptionFeatures", "R3D18Features", "build_feature_network"]

_KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
_KINETICS_STD = (0.22803, 0.22145, 0.216989)


def _weights_file(
    name: str, url: str, pretrained: bool, weights_path: str | os.PathLike | None
) -> Path | None:
    if weights_path is None and not pretrained:
        return None
    path = Path(weights_path) if weights_path is not None else hub_cache_path(url)
    if not path.is_file():
        raise MissingWeightsError(
            name,
            "video FID",
            path,
            url,
            f"pass weights_path='/path/to/{path.name}', or use pretrained=False for a random network (tests "
            "only: the distance is then meaningless).",
        )
    return path


def _load(module: nn.Module, name: str, path: Path | None, skip: tuple[str, ...] = ()) -> None:
    if path is None:
        return
    state = read_state_dict(path, name)
    state = {k: v for k, v in state.items() if not k.startswith(skip)}
    missing, _ = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(skip)]
    if missing:
        raise ValueError(f"{path} does not fit {type(module).__name__}: missing {', '.join(missing[:5])}")


class InceptionFeatures(nn.Module):
    """torchvision Inception-v3 pool features (2048-d) of frames resized to 299 px.

    Args:
        pretrained: read ImageNet weights from torchvision's cache; False: random weights.
        weights_path: an explicit ``inception_v3`` state_dict file.
    """

    clip_length = None
    dim = 2048

    def __init__(self, pretrained: bool = True, weights_path: str | os.PathLike | None = None) -> None:
        super().__init__()
        from torchvision.models import Inception_V3_Weights, inception_v3

        path = _weights_file("Inception-v3", Inception_V3_Weights.IMAGENET1K_V1.url, pretrained, weights_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # init_weights=False for random networks is deliberate speed
            # Google's weights expect inputs in [-1, 1], which is how lmtk images come: no transform_input
            self.network = inception_v3(
                weights=None, aux_logits=False, transform_input=False, init_weights=path is None
            )
        _load(self.network, "Inception-v3", path, skip=("AuxLogits.",))
        self.network.fc = nn.Identity()
        self.eval().requires_grad_(False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        check_shape(frames, ["N", 3, "H", "W"], "frames")
        frames = F.interpolate(frames.clamp(-1, 1), size=(299, 299), mode="bilinear", align_corners=False)
        return self.network(frames)


class R3D18Features(nn.Module):
    """torchvision R3D-18 (Kinetics-400) pool features (512-d) of clips resized to 112 px.

    Args:
        pretrained: read Kinetics weights from torchvision's cache; False: random weights.
        weights_path: an explicit ``r3d_18`` state_dict file.
        clip_length: frames per clip (16, as in the paper's video FID).
    """

    dim = 512

    def __init__(
        self, pretrained: bool = True, weights_path: str | os.PathLike | None = None, clip_length: int = 16
    ) -> None:
        super().__init__()
        from torchvision.models.video import R3D_18_Weights, r3d_18

        path = _weights_file("R3D-18", R3D_18_Weights.KINETICS400_V1.url, pretrained, weights_path)
        self.network = r3d_18(weights=None)
        _load(self.network, "R3D-18", path)
        self.network.fc = nn.Identity()
        self.clip_length = int(clip_length)
        self.register_buffer("mean", torch.tensor(_KINETICS_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_KINETICS_STD).view(1, 3, 1, 1, 1), persistent=False)
        self.eval().requires_grad_(False)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        check_shape(clips, ["N", "T", 3, "H", "W"], "clips")
        n, t = clips.shape[:2]
        frames = F.interpolate(clips.flatten(0, 1).clamp(-1, 1), size=(112, 112), mode="bilinear")
        video = frames.view(n, t, 3, 112, 112).transpose(1, 2)  # (N, 3, T, H, W)
        return self.network(((video + 1) / 2 - self.mean) / self.std)


FEATURE_NETWORKS: dict[str, Callable[..., nn.Module]] = {
    "inception_v3": InceptionFeatures,
    "r3d_18": R3D18Features,
}


def build_feature_network(
    network: str | Mapping | nn.Module | Callable,
    pretrained: bool = True,
    weights_path: str | os.PathLike | None = None,
) -> Callable:
    """A feature network from a name in :data:`FEATURE_NETWORKS`, a registered component config, or a
    ready module / callable (returned as is). ``pretrained`` and ``weights_path`` apply to names."""
    if isinstance(network, str):
        if network not in FEATURE_NETWORKS:
            raise ValueError(
                f"unknown FID feature network {network!r}; choose from {', '.join(FEATURE_NETWORKS)}, "
                "or pass a config dict or a module"
            )
        with torch.random.fork_rng():  # random networks repeat; the global RNG is left as it was
            torch.manual_seed(0)
            return FEATURE_NETWORKS[network](pretrained=pretrained, weights_path=weights_path)
    if isinstance(network, Mapping):
        return build(network)
    if not callable(network):
        raise TypeError(f"feature_network must be a name, config, module or callable, got {network!r}")
    return network
