"""Python entry points used by the tools and by users."""

from .loading import load_model, model_config_of, save_model

__all__ = ["load_model", "model_config_of", "save_model"]
