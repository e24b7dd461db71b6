"""The residual trunk that LIA's encoder shares with StyleGAN2's discriminator."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from torch import nn

from ..layers import ConvLayer, ResBlock

__all__ = ["residual_trunk"]


def residual_trunk(
    size: int,
    channels: Mapping[int, int],
    fir_taps: Sequence[float] = (1, 3, 3, 1),
    widen_first: bool = False,
) -> tuple[ConvLayer, nn.ModuleList]:
    """A 1x1 stem from RGB, then residual blocks that halve the resolution from ``size`` down to 4 px.

    Returned as two modules so that the owner names them (``stem``, ``blocks``), as the published
    checkpoints' key mapping expects. ``channels`` is a :func:`~lmtk.models.channels.channel_schedule`;
    ``widen_first`` picks the block variant (see :class:`~lmtk.layers.ResBlock`).

    Example:
        >>> from lmtk.models.channels import channel_schedule
        >>> stem, blocks = residual_trunk(32, channel_schedule(32, channel_base=256, max_channels=32))
        >>> len(blocks)  # 32 -> 16 -> 8 -> 4
        3
    """
    stem = ConvLayer(3, channels[size], 1)
    blocks = nn.ModuleList(
        ResBlock(channels[2**i], channels[2 ** (i - 1)], fir_taps, widen_first)
        for i in range(int(math.log2(size)), 2, -1)
    )
    return stem, blocks
