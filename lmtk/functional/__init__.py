"""Pure tensor operations: FIR resampling, flow warping, anti-aliasing, GAN losses, precision islands."""

from .fir import fir_downsample2d, fir_filter2d, fir_kernel, fir_upsample2d
from .precision import full_precision
from .warp import base_grid, flow_warp

__all__ = [
    "base_grid",
    "fir_downsample2d",
    "fir_filter2d",
    "fir_kernel",
    "fir_upsample2d",
    "flow_warp",
    "full_precision",
]
