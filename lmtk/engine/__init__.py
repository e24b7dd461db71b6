"""mmengine glue: a Runner subclass, a resumable loop, the per-network optimizer constructor, hooks."""

from .hooks import AtomicCheckpointHook, RNGStateHook, SampleGridHook, TrainingStartHook
from .loops import ExactResumeIterBasedTrainLoop
from .optim_constructor import LIAOptimWrapperConstructor
from .runner import LMTKRunner
from .schedules import ScheduleLengthHook, resolve_max_iters

__all__ = [
    "AtomicCheckpointHook",
    "ExactResumeIterBasedTrainLoop",
    "LIAOptimWrapperConstructor",
    "LMTKRunner",
    "RNGStateHook",
    "SampleGridHook",
    "ScheduleLengthHook",
    "TrainingStartHook",
    "resolve_max_iters",
]
