"""Training hooks (registered in mmengine's HOOKS)."""

from .checkpoint_hook import AtomicCheckpointHook
from .deferred_runtime_info_hook import DeferredRuntimeInfoHook
from .rng_state_hook import RNGStateHook
from .sample_grid_hook import SampleGridHook
from .training_start_hook import TrainingStartHook

__all__ = [
    "AtomicCheckpointHook",
    "DeferredRuntimeInfoHook",
    "RNGStateHook",
    "SampleGridHook",
    "TrainingStartHook",
]
