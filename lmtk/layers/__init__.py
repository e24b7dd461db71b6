"""Building blocks in pure PyTorch: equalized layers, activation, FIR-resampling and modulated convs."""

from .activation import BiasLeakyReLU, bias_leaky_relu
from .conv_layer import ConvLayer, ResBlock
from .equalized import EqualConv2d, EqualLinear
from .modulated_conv import ModulatedConv2d, grouped_modulated_conv2d
from .resample import BLUR_IMPLS, conv2d_resample, set_blur
from .styled_conv import StyledConv

__all__ = [
    "BLUR_IMPLS",
    "BiasLeakyReLU",
    "ConvLayer",
    "EqualConv2d",
    "EqualLinear",
    "ModulatedConv2d",
    "ResBlock",
    "StyledConv",
    "bias_leaky_relu",
    "conv2d_resample",
    "grouped_modulated_conv2d",
    "set_blur",
]
