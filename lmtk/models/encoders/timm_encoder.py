"""An encoder built on any timm backbone, adapted to the pyramid and code LIA's generator expects."""

from __future__ import annotations

import difflib

import torch
import torch.nn.functional as F
from torch import nn

from ...cli import error_reason
from ...functional.checks import check_shape
from ...layers import EqualConv2d, EqualLinear
from ...registry import encoders
from ..channels import channel_schedule, check_size

__all__ = ["TimmEncoder"]


@encoders.register("lmtk.TimmEncoder.v1")
class TimmEncoder(nn.Module):
    """``timm.create_model(backbone, features_only=True)`` plus 1x1 adapters and a code head.

    The backbone's feature maps (strides 2..32) are resized to each generator resolution 8..S and
    projected to the generator's channel count there by 1x1 convolutions; the code is a linear map of
    the globally pooled deepest feature map.

    Args:
        backbone: any timm model name that supports ``features_only`` (e.g. ``"resnet18"``).
        size: input resolution.
        latent_dim: size of the code.
        pretrained: load timm's pretrained weights (they must be in the local cache: nothing is
            downloaded at run time).
        channel_multiplier, channel_base, max_channels: the generator's channel schedule to match.
        backbone_kwargs: extra keyword arguments for ``timm.create_model``.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        size: int = 256,
        latent_dim: int = 512,
        pretrained: bool = False,
        channel_multiplier: float = 1.0,
        channel_base: int = 16384,
        max_channels: int = 512,
        backbone_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        import timm

        check_size(size)
        self.size = size
        self.latent_dim = latent_dim
        if ":" not in backbone and not timm.is_model(backbone):  # hf-hub:... and local-dir:... load as given
            close = difflib.get_close_matches(backbone, timm.list_models(), n=3)
            meant = f"; did you mean {', '.join(close)}?" if close else " (timm.list_models() lists them)"
            raise ValueError(f"timm has no backbone '{backbone}' (model.encoder.backbone){meant}")
        try:
            self.backbone = timm.create_model(
                backbone, features_only=True, pretrained=pretrained, **(backbone_kwargs or {})
            )
        except (OSError, RuntimeError) as error:  # huggingface_hub's offline errors are OSErrors
            if not pretrained:
                raise
            raise FileNotFoundError(
                f"cannot load the pretrained weights of timm backbone '{backbone}' ({error_reason(error)}); they must "
                f"already be in the local cache (HF_HOME / TORCH_HOME), or set model.encoder.pretrained=False "
                f"for random initialisation"
            ) from error
        reductions = self.backbone.feature_info.reduction()
        backbone_channels = self.backbone.feature_info.channels()
        channels = channel_schedule(size, channel_multiplier, channel_base, max_channels)
        self.feature_channels = {r: c for r, c in sorted(channels.items()) if r >= 8}
        # each generator resolution reads the backbone level whose stride is closest
        self._sources = []
        for resolution in self.feature_channels:
            stride = size // resolution
            self._sources.append(min(range(len(reductions)), key=lambda i: abs(reductions[i] - stride)))
        self.adapters = nn.ModuleList(
            EqualConv2d(backbone_channels[src], out_c, 1)
            for src, out_c in zip(self._sources, self.feature_channels.values())
        )
        self.to_code = EqualLinear(backbone_channels[-1], latent_dim)

    def forward(self, image: torch.Tensor, with_features: bool = True):
        check_shape(image, ["B", 3, self.size, self.size], "image")
        maps = self.backbone(image)
        code = self.to_code(maps[-1].mean(dim=(2, 3)))
        if not with_features:
            return code, None
        features = []
        for resolution, src, adapter in zip(self.feature_channels, self._sources, self.adapters):
            x = maps[src]
            if x.shape[-1] != resolution:
                x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
            features.append(adapter(x))
        return code, features
