"""Training hooks (registered in mmengine's HOOKS)."""

from .rng_state_hook import RNGStateHook
from .sample_grid_hook import SampleGridHook

__all__ = ["RNGStateHook", "SampleGridHook"]
