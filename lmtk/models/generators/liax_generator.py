"""LIA-X's generator: LIA's flow-and-mask synthesis, deepened, with a separate refinement path for RGB.

Differences from :class:`~lmtk.models.generators.flow_generator.FlowGenerator` (LIA), per resolution:

- after the upsampling styled conv come :class:`FlowResBlock` s (styled convs with a GroupNorm and a
  learned, initially tiny residual scale) instead of one styled conv;
- the warped, masked source features go through a refinement path of their own: the previous level's
  refined features, upsampled (:class:`RefineUpsample`), are added, then :class:`RefineBlock` s refine
  them, and the RGB head reads the result. The synthesis activations continue from the blend of warped
  and synthesised features, as in LIA;
- no noise is injected, and the warp samples with ``align_corners=True`` (set on the warper).

The flow and RGB heads are LIA's (:class:`FlowHead`, :class:`RGBHead`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ...functional.fir import fir_kernel, fir_upsample2d
from ...layers import ConvLayer, StyledConv
from ...registry import synthesis_networks
from .flow_generator import FlowHead, FlowSynthesis, RGBHead

__all__ = ["FlowResBlock", "LIAXGenerator", "LIAXStage", "RefineBlock", "RefineUpsample"]


class FlowResBlock(nn.Module):
    """``h = conv1(x); h + gamma * conv2(GroupNorm(h))`` with styled 3x3 convs.

    Args:
        channels: input and output channels.
        style_dim: size of the latent that modulates the convs.
        norm_groups: GroupNorm groups (32 in LIA-X); must divide ``channels``.
        gamma_init: initial residual scale (1e-5 in LIA-X: each block starts as its first conv).
    """

    def __init__(
        self,
        channels: int,
        style_dim: int,
        norm_groups: int = 32,
        gamma_init: float = 1e-5,
        fir_taps: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        if channels % norm_groups:
            raise ValueError(
                f"norm_groups={norm_groups} must divide the {channels} channels of a FlowResBlock"
            )
        self.conv1 = StyledConv(channels, channels, 3, style_dim, fir_taps=fir_taps, noise=False)
        self.norm = nn.GroupNorm(norm_groups, channels)
        self.conv2 = StyledConv(channels, channels, 3, style_dim, fir_taps=fir_taps, noise=False)
        self.gamma = nn.Parameter(torch.full((1, channels, 1, 1), float(gamma_init)))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x, style)
        return self.gamma * self.conv2(self.norm(h), style) + h


class RefineBlock(nn.Module):
    """Two 3x3 conv layers (bias + leaky ReLU each) with an identity skip, summed / sqrt(2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.conv2 = ConvLayer(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + x) / math.sqrt(2)


class RefineUpsample(nn.Module):
    """2x FIR upsampling, then a 3x3 conv layer (bias + leaky ReLU): the coarser refined features."""

    def __init__(self, in_channels: int, out_channels: int, fir_taps: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.register_buffer("fir", fir_kernel(fir_taps, gain=4.0), persistent=False)
        self.conv = ConvLayer(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(fir_upsample2d(x, self.fir))


class LIAXStage(nn.Module):
    """One resolution: upsampling styled conv, flow blocks, flow head, refinement path, RGB head."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        style_dim: int,
        num_flow_blocks: int = 4,
        num_refine_blocks: int = 4,
        norm_groups: int = 32,
        refine_from_coarser: bool = True,
        fir_taps: Sequence[float] = (1, 3, 3, 1),
        flow_init_gain: float = 1.0,
        rgb_init_gain: float = 1.0,
    ) -> None:
        super().__init__()
        self.conv_up = StyledConv(
            in_channels, out_channels, 3, style_dim, upsample=True, fir_taps=fir_taps, noise=False
        )
        self.flow_blocks = nn.ModuleList(
            FlowResBlock(out_channels, style_dim, norm_groups, fir_taps=fir_taps)
            for _ in range(num_flow_blocks)
        )
        self.to_flow = FlowHead(out_channels, style_dim, fir_taps, flow_init_gain)
        self.refine_up = RefineUpsample(in_channels, out_channels, fir_taps) if refine_from_coarser else None
        self.refine = nn.ModuleList(RefineBlock(out_channels) for _ in range(num_refine_blocks))
        self.to_rgb = RGBHead(out_channels, fir_taps, rgb_init_gain)


@synthesis_networks.register("lmtk.LIAXGenerator.v1")
class LIAXGenerator(FlowSynthesis):
    """Latent ``(B, D)`` + features (coarse to fine) -> image ``(B, 3, S, S)`` (LIA-X's decoder).

    Args:
        size: output resolution ``S`` (512 in LIA-X).
        latent_dim: size of the latent code ``D`` (1024 in LIA-X).
        warper: a warper module or config (default ``lmtk.FlowWarper.v1`` with ``align_corners=True``).
        channel_multiplier, channel_base, max_channels: the channel schedule, which must match the
            encoder's (LIA-X: ``channel_base=65536, max_channels=1024``).
        num_flow_blocks: :class:`FlowResBlock` s per resolution (4).
        num_refine_blocks: :class:`RefineBlock` s per resolution (4).
        norm_groups: GroupNorm groups of the flow blocks (32).
        fir_taps: FIR taps for up-sampling.
        flow_init_gain, rgb_init_gain: initial scale of the flow and RGB heads' weights (see
            :class:`~lmtk.models.generators.flow_generator.FlowHead`).
    """

    default_warper = {"type": "lmtk.FlowWarper.v1", "align_corners": True}
    inject_noise = False

    def __init__(
        self,
        size: int = 512,
        latent_dim: int = 1024,
        warper: nn.Module | dict | None = None,
        channel_multiplier: float = 1.0,
        channel_base: int = 65536,
        max_channels: int = 1024,
        num_flow_blocks: int = 4,
        num_refine_blocks: int = 4,
        norm_groups: int = 32,
        fir_taps: Sequence[float] = (1, 3, 3, 1),
        flow_init_gain: float = 1.0,
        rgb_init_gain: float = 1.0,
    ) -> None:
        super().__init__(size, latent_dim, warper, channel_multiplier, channel_base, max_channels, fir_taps)
        self.stages = nn.ModuleList(
            LIAXStage(
                c_in,
                c_out,
                latent_dim,
                num_flow_blocks,
                num_refine_blocks,
                norm_groups,
                refine_from_coarser=level > 0,
                fir_taps=fir_taps,
                flow_init_gain=flow_init_gain,
                rgb_init_gain=rgb_init_gain,
            )
            for level, (c_in, c_out) in enumerate(self.stage_channels())
        )

    def forward(
        self, latent: torch.Tensor, features: Sequence[torch.Tensor], return_levels: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        """Decode ``latent`` by warping ``features`` (one map per stage, 8 to ``size`` px).

        ``return_levels`` also returns each level's ``flow``, ``mask``, the pre-activation ``logits``
        (what the next level upsamples) and the accumulated ``rgb``.
        """
        x = self.start(latent, features)
        flow_logits = rgb = refined = None
        levels = []
        for stage, feature in zip(self.stages, features):
            x = stage.conv_up(x, latent)
            for block in stage.flow_blocks:
                x = block(x, latent)
            x, warped, flow_logits, flow, mask = self.warp_level(
                stage.to_flow, x, latent, feature, flow_logits
            )
            if stage.refine_up is not None:
                warped = warped + stage.refine_up(refined)
            for block in stage.refine:
                warped = block(warped)
            refined = warped
            rgb = stage.to_rgb(refined, rgb)
            if return_levels:
                levels.append({"flow": flow, "mask": mask, "logits": flow_logits, "rgb": rgb})
        return (rgb, levels) if return_levels else rgb
