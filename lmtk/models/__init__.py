"""Networks and models: the component contracts (interfaces), encoders, motion bases, warpers, synthesis
networks (generators/), discriminators and LIA."""

from . import discriminators, encoders, generators, interfaces, motion_bases, warpers
from .lia import LIA
from .lia_generator import LIAGenerator
from .liax import LIAX
from .motion_mlp import MotionMLP

__all__ = [
    "LIA",
    "LIAGenerator",
    "LIAX",
    "MotionMLP",
    "discriminators",
    "encoders",
    "generators",
    "interfaces",
    "motion_bases",
    "warpers",
]
