"""LIA's generator: a StyleGAN2 synthesis stack that predicts flows and masks to warp encoder features.

At each resolution a head predicts a 3-channel field: two flow channels (``tanh``) and an occlusion
mask (``sigmoid``), accumulated coarse to fine. Source features are warped and masked (eq. 5), replace
the masked part of the synthesis activations, and feed an RGB refinement path that accumulates
upsampled outputs (eq. 6).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ...functional.fir import fir_kernel, fir_upsample2d
from ...functional.precision import cast_keeping_broadcast, full_precision
from ...layers import ConvLayer, ModulatedConv2d, StyledConv
from ...registry import build, synthesis_networks
from ..channels import channel_schedule, check_size
from ..interfaces import Warper, check_interface

__all__ = ["FlowGenerator", "FlowHead", "FlowSynthesis", "RGBHead", "SynthesisStage"]


class FlowHead(nn.Module):
    """Modulated 1x1 conv to (flow x, flow y, mask) logits, plus the upsampled coarser logits.

    ``init_gain`` scales the initial weights: 1 is the published initialisation (random warps of up to
    a quarter of the image at the start); 0 starts every level at zero flow and mask 0.5, from which a
    model trained from scratch learns to copy, then to move, much sooner.
    """

    def __init__(
        self,
        in_channels: int,
        style_dim: int,
        fir_taps: Sequence[float] = (1, 3, 3, 1),
        init_gain: float = 1.0,
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        with torch.no_grad():
            self.conv.weight.mul_(init_gain)
        self.bias = nn.Parameter(torch.zeros(3))
        self.register_buffer("fir", fir_kernel(fir_taps, gain=4.0), persistent=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor, coarser: torch.Tensor | None) -> torch.Tensor:
        # At least float32 under autocast: bf16 logits alone would move the sampling points by about
        # half a pixel at 256 px; three output channels make this cheap.
        with full_precision(x) as precision:
            logits = self.conv(x.to(precision), style.to(precision)) + self.bias.view(1, 3, 1, 1)
            if coarser is not None:
                logits = logits + fir_upsample2d(coarser.to(precision), self.fir)
        return logits


class RGBHead(nn.Module):
    """1x1 conv to RGB with activation, a bias, and the upsampled coarser image (eq. 6).

    ``init_gain`` scales the initial weights: 1 is the published initialisation; 0 starts every level
    at a flat image, so a model trained from scratch need not first unlearn random colour noise that
    the coarse levels add to the fine one.
    """

    def __init__(
        self, in_channels: int, fir_taps: Sequence[float] = (1, 3, 3, 1), init_gain: float = 1.0
    ) -> None:
        super().__init__()
        self.conv = ConvLayer(in_channels, 3, 1)
        with torch.no_grad():
            self.conv.conv.weight.mul_(init_gain)
        self.bias = nn.Parameter(torch.zeros(3))
        self.register_buffer("fir", fir_kernel(fir_taps, gain=4.0), persistent=False)

    def forward(self, x: torch.Tensor, coarser: torch.Tensor | None) -> torch.Tensor:
        # The image accumulates over every level: kept in at least float32, like the flow logits
        with full_precision(x) as precision:
            rgb = self.conv(x.to(precision)) + self.bias.view(1, 3, 1, 1)
            if coarser is not None:
                rgb = rgb + fir_upsample2d(coarser.to(precision), self.fir)
        return rgb


class SynthesisStage(nn.Module):
    """One resolution: upsampling styled conv, styled conv, flow head, warp, RGB head."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        style_dim: int,
        fir_taps: Sequence[float] = (1, 3, 3, 1),
        flow_init_gain: float = 1.0,
        rgb_init_gain: float = 1.0,
    ) -> None:
        super().__init__()
        self.conv_up = StyledConv(in_channels, out_channels, 3, style_dim, upsample=True, fir_taps=fir_taps)
        self.conv = StyledConv(out_channels, out_channels, 3, style_dim, fir_taps=fir_taps)
        self.to_flow = FlowHead(out_channels, style_dim, fir_taps, flow_init_gain)
        self.to_rgb = RGBHead(out_channels, fir_taps, rgb_init_gain)


class FlowSynthesis(nn.Module):
    """What LIA's and LIA-X's generators share: the channel schedule, the styled 4x4 start, and per
    level the flow-and-mask prediction that warps the source features into the activations (eq. 5).

    Subclasses build ``self.stages`` (8 px to ``size``), each with a ``to_flow`` :class:`FlowHead`.

    Attributes:
        default_warper: the warper config used when none is given.
        inject_noise: whether the styled convs add noise (LIA) or not (LIA-X).
    """

    default_warper: dict = {"type": "lmtk.FlowWarper.v1"}
    inject_noise: bool = True

    def __init__(
        self,
        size: int,
        latent_dim: int,
        warper: nn.Module | dict | None,
        channel_multiplier: float,
        channel_base: int,
        max_channels: int,
        fir_taps: Sequence[float],
    ) -> None:
        super().__init__()
        check_size(size)
        self.channels = channel_schedule(size, channel_multiplier, channel_base, max_channels)
        self.size = size
        self.latent_dim = latent_dim
        self.feature_channels = {r: c for r, c in sorted(self.channels.items()) if r >= 8}
        self.warper = build(warper if warper is not None else dict(self.default_warper), "warpers")
        check_interface(self.warper, Warper)
        c4 = self.channels[4]
        self.const_input = nn.Parameter(torch.randn(1, c4, 4, 4))
        self.conv1 = StyledConv(c4, c4, 3, latent_dim, fir_taps=fir_taps, noise=self.inject_noise)

    def stage_channels(self) -> list[tuple[int, int]]:
        """``(in_channels, out_channels)`` of each stage, 8 px to ``size``."""
        levels = range(3, int(math.log2(self.size)) + 1)
        return [(self.channels[2 ** (i - 1)], self.channels[2**i]) for i in levels]

    def start(self, latent: torch.Tensor, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Check there is one feature map per stage; the 4x4 activations the first stage upsamples."""
        if len(features) != len(self.stages):
            raise ValueError(
                f"{type(self).__name__} needs {len(self.stages)} feature maps (8 to {self.size} px), "
                f"got {len(features)}"
            )
        return self.conv1(self.const_input.expand(latent.shape[0], -1, -1, -1), latent)

    def warp_level(
        self,
        to_flow: FlowHead,
        x: torch.Tensor,
        latent: torch.Tensor,
        feature: torch.Tensor,
        coarser_logits: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One level's flow and mask, and the warped, masked ``feature`` replacing the masked part of ``x``.

        Returns ``(x, warped, logits, flow, mask)``: the blended activations, the warped features, the
        flow logits (what the next level upsamples), the flow and the mask.
        """
        logits = to_flow(x, latent, coarser_logits)
        flow = torch.tanh(logits[:, :2])
        mask = torch.sigmoid(logits[:, 2:3])
        blend = mask.to(x.dtype)  # the flow stays in float32 for the sampling, activations do not
        warped = self.warper(cast_keeping_broadcast(feature, x.dtype), flow, blend)
        return warped + x * (1 - blend), warped, logits, flow, mask


@synthesis_networks.register("lmtk.FlowGenerator.v1")
class FlowGenerator(FlowSynthesis):
    """Latent ``(B, D)`` + features (coarse to fine) -> image ``(B, 3, S, S)``, roughly in [-1, 1].

    Args:
        size: output resolution ``S``.
        latent_dim: size of the latent code ``D``.
        warper: a warper module or config (default ``lmtk.FlowWarper.v1``).
        channel_multiplier, channel_base, max_channels: the channel schedule, which must match the
            encoder's so warped features can replace synthesis activations.
        fir_taps: FIR taps for up-sampling.
        flow_init_gain: initial scale of the flow heads' weights (see :class:`FlowHead`).
        rgb_init_gain: initial scale of the RGB heads' weights (see :class:`RGBHead`).
    """

    def __init__(
        self,
        size: int = 256,
        latent_dim: int = 512,
        warper: nn.Module | dict | None = None,
        channel_multiplier: float = 1.0,
        channel_base: int = 16384,
        max_channels: int = 512,
        fir_taps: Sequence[float] = (1, 3, 3, 1),
        flow_init_gain: float = 1.0,
        rgb_init_gain: float = 1.0,
    ) -> None:
        super().__init__(size, latent_dim, warper, channel_multiplier, channel_base, max_channels, fir_taps)
        self.stages = nn.ModuleList(
            SynthesisStage(c_in, c_out, latent_dim, fir_taps, flow_init_gain, rgb_init_gain)
            for c_in, c_out in self.stage_channels()
        )

    def forward(
        self, latent: torch.Tensor, features: Sequence[torch.Tensor], return_levels: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        """Decode ``latent`` by warping ``features``.

        Args:
            latent: ``(B, latent_dim)``.
            features: one map per stage, ``(B, C_r, r, r)`` for r = 8, 16, ..., S.
            return_levels: also return each level's ``flow`` ``(B, 2, r, r)`` and ``mask``
                ``(B, 1, r, r)``.
        """
        x = self.start(latent, features)
        flow_logits = rgb = None
        levels = []
        for stage, feature in zip(self.stages, features):
            x = stage.conv_up(x, latent)
            x = stage.conv(x, latent)
            x, warped, flow_logits, flow, mask = self.warp_level(
                stage.to_flow, x, latent, feature, flow_logits
            )
            rgb = stage.to_rgb(warped, rgb)
            if return_levels:
                levels.append({"flow": flow, "mask": mask})
        return (rgb, levels) if return_levels else rgb
