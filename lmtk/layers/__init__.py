"""Building blocks in pure PyTorch: equalized layers, activation, FIR-filtered and modulated convs."""

from .activation import BiasLeakyReLU, bias_leaky_relu
from .conv_layer import ConvLayer, ResBlock
from .equalized import EqualConv2d, EqualLinear
from .modulated_conv import ModulatedConv2d, grouped_modulated_conv2d
from .styled_conv import StyledConv

__all__ = [
    "BiasLeakyReLU",
    "ConvLayer",
    "EqualConv2d",
    "EqualLinear",
    "ModulatedConv2d",
    "ResBlock",
    "StyledConv",
    "bias_leaky_relu",
    "grouped_modulated_conv2d",
]
