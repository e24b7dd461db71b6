"""Generators: latent code + appearance features -> image."""

from .flow_generator import FlowGenerator

__all__ = ["FlowGenerator"]
