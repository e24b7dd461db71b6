"""lmtk, the latent motion toolkit: train, animate with and interpret latent image animators (LIA)."""

from .apis import load_model, save_model
from .version import __version__

__all__ = ["__version__", "load_model", "save_model"]
