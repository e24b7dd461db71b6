"""Synthesis networks (registry kind ``synthesis_networks``): latent code + appearance features -> image."""

from .flow_generator import FlowGenerator
from .liax_generator import LIAXGenerator

__all__ = ["FlowGenerator", "LIAXGenerator"]
