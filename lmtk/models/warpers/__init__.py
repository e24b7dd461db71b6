"""Warpers: how a flow field moves appearance features."""

from .flow_warper import FlowWarper

__all__ = ["FlowWarper"]
