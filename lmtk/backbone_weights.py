"""Pretrained backbone weights (VGG19, AlexNet, Inception-v3, R3D-18): found and read, never downloaded.

The perceptual loss and the LPIPS and FID metrics read torchvision's weight files from its hub cache
(``torch.hub.get_dir()/checkpoints/<file>``, where ``torchvision.models.<net>(weights="DEFAULT")`` puts
them on a machine with network access) or from a file the user names. A missing file raises
:class:`MissingWeightsError`, which carries what a command-line tool needs to phrase its own fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import torch

__all__ = ["MissingWeightsError", "hub_cache_path", "read_state_dict"]


def hub_cache_path(url: str) -> Path:
    """Where torchvision caches the file of ``url``: ``torch.hub.get_dir()/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


class MissingWeightsError(FileNotFoundError):
    """A weights file is not where it was looked for.

    Attributes:
        network: the backbone (``"AlexNet"``, ``"VGG19"`` ...).
        path: where it was looked for.
        url: where to download it from.
    """

    def __init__(self, network: str, purpose: str, path: Path, url: str, alternatives: str) -> None:
        self.network, self.path, self.url = network, Path(path), url
        super().__init__(
            f"{network} weights for {purpose} not found at {path} (lmtk never downloads them). Download "
            f"{url} to that path (torch.hub.get_dir() follows $TORCH_HOME), {alternatives}"
        )


def read_state_dict(path: str | os.PathLike, network: str) -> Mapping:
    """The state_dict in a weights file (a ``{"state_dict": ...}`` wrapper is unwrapped).

    Raises:
        ValueError: the file cannot be read as PyTorch weights (empty, cut short, another format) or
            holds something other than a state_dict.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for a bad file; all mean the same
        if path.is_file() and path.stat().st_size == 0:
            what = "the file is empty"
        else:
            reason = " ".join(str(error).split()).split(". ")[0].rstrip(".") or type(error).__name__
            what = f"the file is cut short or not a PyTorch weights file ({reason})"
        raise ValueError(
            f"cannot read the {network} weights {path}: {what}; download the file again"
        ) from error
    state = state.get("state_dict", state) if isinstance(state, Mapping) else state
    if not isinstance(state, Mapping):
        raise ValueError(f"{path} holds a {type(state).__name__}, expected a {network} state_dict")
    return state
