"""Motion bases: how motion magnitudes become a path in latent space."""

from .direct_path import DirectPath
from .gram_schmidt import GramSchmidtBasis

__all__ = ["DirectPath", "GramSchmidtBasis"]
