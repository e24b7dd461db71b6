"""The channel schedule shared by LIA's encoder, generator and discriminator."""

from __future__ import annotations

import math

__all__ = ["channel_schedule", "check_size"]


def check_size(size: int, name: str = "size") -> int:
    """Validate an image size: a power of two from 8 up."""
    if not isinstance(size, int) or size < 8 or size & (size - 1):
        raise ValueError(f"{name} must be a power of two >= 8 (for example 64 or 256), got {size!r}")
    return size


def channel_schedule(
    size: int, channel_multiplier: float = 1.0, channel_base: int = 16384, max_channels: int = 512
) -> dict[int, int]:
    """Channels at each resolution 4, 8, ..., size: ``min(max_channels, channel_base * mult / res)``.

    The defaults give the published LIA/StyleGAN2 table {4..32: 512, 64: 256, 128: 128, 256: 64}.
    Tests use, for example, ``channel_base=256, max_channels=32`` for a network a few MB in size.

    Example:
        >>> channel_schedule(256)[64], channel_schedule(256)[256]
        (256, 64)
    """
    check_size(size)
    return {
        2**i: max(1, min(max_channels, int(channel_base * channel_multiplier / 2**i)))
        for i in range(2, int(math.log2(size)) + 1)
    }
