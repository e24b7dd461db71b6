"""Example lmtk plugin: a motion basis whose directions are a product of Householder reflections.

The package registers nothing itself: its ``setup.cfg`` declares the entry point
``lmtk_householder.HouseholderBasis.v1`` in the group ``lmtk_motion_bases``, and lmtk's registry loads
it on first use.
"""

from .householder import HouseholderBasis, householder_directions

__all__ = ["HouseholderBasis", "householder_directions"]
__version__ = "0.1.0"
