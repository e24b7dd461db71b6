"""StyleGAN2's residual discriminator with a minibatch standard-deviation feature."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ...functional.checks import check_shape
from ...functional.precision import full_precision
from ...layers import ConvLayer, EqualLinear
from ...registry import discriminators
from ..channels import channel_schedule, check_size
from ..residual_trunk import residual_trunk

__all__ = ["StyleGAN2Discriminator"]


@discriminators.register("lmtk.StyleGAN2Discriminator.v1")
class StyleGAN2Discriminator(nn.Module):
    """Image ``(B, 3, S, S)`` -> realness logit ``(B, 1)``.

    Args:
        size: input resolution.
        channel_multiplier, channel_base, max_channels: the channel schedule.
        stddev_group: samples per group for the minibatch standard deviation (the largest divisor
            of the batch size up to this value is used, so any batch size works).
        fir_taps: low-pass taps for downsampling.
    """

    def __init__(
        self,
        size: int = 256,
        channel_multiplier: float = 1.0,
        channel_base: int = 16384,
        max_channels: int = 512,
        stddev_group: int = 4,
        fir_taps: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        check_size(size)
        channels = channel_schedule(size, channel_multiplier, channel_base, max_channels)
        self.size = size
        self.stddev_group = stddev_group
        self.stem, self.blocks = residual_trunk(size, channels, fir_taps)
        self.final_conv = ConvLayer(channels[4] + 1, channels[4], 3)
        self.final_fc = EqualLinear(channels[4] * 16, channels[4], activation="leaky_relu")
        self.logit = EqualLinear(channels[4], 1)

    def _group_size(self, batch: int) -> int:
        return max(g for g in range(1, min(batch, self.stddev_group) + 1) if batch % g == 0)

    def minibatch_stddev(self, x: torch.Tensor) -> torch.Tensor:
        """Append one channel: the mean std of features over groups of samples (diversity signal)."""
        batch, channels, height, width = x.shape
        group = self._group_size(batch)
        # At least float32 under autocast: in float16 the 1e-8 rounds to 0 and a variance that underflows
        # to 0 gives sqrt an infinite gradient, which makes every gradient NaN
        with full_precision(x) as precision:
            grouped = x.to(precision).view(group, -1, 1, channels, height, width)
            stddev = torch.sqrt(grouped.var(0, unbiased=False) + 1e-8)
            stddev = stddev.mean([2, 3, 4], keepdim=True).squeeze(2)
        return torch.cat([x, stddev.to(x.dtype).repeat(group, 1, height, width)], 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        check_shape(image, ["B", 3, self.size, self.size], "image")
        x = self.stem(image)
        for block in self.blocks:
            x = block(x)
        x = self.final_conv(self.minibatch_stddev(x))
        return self.logit(self.final_fc(x.flatten(1)))
