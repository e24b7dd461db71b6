"""Pure tensor operations: FIR resampling, flow warping, anti-aliasing, GAN losses."""

from .fir import fir_downsample2d, fir_filter2d, fir_kernel, fir_upsample2d
from .warp import base_grid, flow_warp

__all__ = ["base_grid", "fir_downsample2d", "fir_filter2d", "fir_kernel", "fir_upsample2d", "flow_warp"]
