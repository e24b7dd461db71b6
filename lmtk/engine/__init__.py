"""mmengine glue: a Runner subclass, a resumable loop, the per-network optimizer constructor, hooks."""

from .hooks import RNGStateHook, SampleGridHook
from .loops import ExactResumeIterBasedTrainLoop
from .optim_constructor import LIAOptimWrapperConstructor
from .runner import LMTKRunner

__all__ = [
    "ExactResumeIterBasedTrainLoop",
    "LIAOptimWrapperConstructor",
    "LMTKRunner",
    "RNGStateHook",
    "SampleGridHook",
]
