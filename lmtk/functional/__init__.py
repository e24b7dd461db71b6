"""Pure tensor operations: FIR resampling, flow warping, anti-aliasing, GAN losses, precision islands,
image value ranges and shape checks."""

from .checks import check_shape
from .fir import fir_downsample2d, fir_filter2d, fir_kernel, fir_upsample2d
from .image_range import float_to_uint8, uint8_to_float
from .precision import full_precision
from .warp import base_grid, flow_warp

__all__ = [
    "base_grid",
    "check_shape",
    "fir_downsample2d",
    "fir_filter2d",
    "fir_kernel",
    "fir_upsample2d",
    "float_to_uint8",
    "flow_warp",
    "full_precision",
    "uint8_to_float",
]
