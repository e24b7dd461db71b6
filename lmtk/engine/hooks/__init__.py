"""Training hooks (registered in mmengine's HOOKS)."""

from .deferred_runtime_info_hook import DeferredRuntimeInfoHook, flush_deferred_logs
from .rng_state_hook import RNGStateHook
from .sample_grid_hook import SampleGridHook

__all__ = ["DeferredRuntimeInfoHook", "RNGStateHook", "SampleGridHook", "flush_deferred_logs"]
