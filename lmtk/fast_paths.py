"""Fast paths: switches that make the same model run faster, none changing a parameter or a checkpoint.

- autocast to bfloat16 / float16 (:class:`AutocastOptimWrapper` or mmengine's ``AmpOptimWrapper`` when
  training); the flow/RGB heads and the warp's sampling stay in float32;
- ``channels_last`` end to end (weights and inputs; the warper hands channels_last on);
- how the resampling layers' FIR blur runs (:func:`lmtk.layers.resample.set_blur`): ``"depthwise"``
  (the reference), ``"folded"`` into the neighbouring convolution (the fastest eager form on a GPU) or
  ``"separable"`` shifted multiply-adds (the fastest under ``compile`` on a GPU) or ``"subpixel"``
  (upsampling as an ordinary convolution and a pixel shuffle: the int8 ONNX export's form);
- ``torch.compile`` of the encoder and the generator (and, for training, the discriminator and VGG),
  with CUDA graphs under ``mode="reduce-overhead"`` and inductor's freezing for inference.

:func:`apply_fast_paths` switches them on in place, from outside the model, and returns a ``restore()``;
a config's ``fast_paths = dict(...)`` entry is read by ``tools/train.py`` (through the runner) and
``tools/benchmark.py`` (:meth:`FastPaths.from_config`); ``tools/animate.py`` and ``tools/test.py`` take
them as command-line options only.

Example:
    >>> from lmtk.registry import build
    >>> model = build(dict(type="lmtk.LIA.v1", size=32, latent_dim=16, channel_base=128,
    ...     encoder=dict(type="lmtk.LIAEncoder.v1"), generator=dict(type="lmtk.FlowGenerator.v1"),
    ...     motion_basis=dict(type="lmtk.GramSchmidtBasis.v1", num_directions=4))).eval()
    >>> restore = apply_fast_paths(model, FastPaths(channels_last=True, blur="folded"))
    >>> model.net.encoder.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)
    True
    >>> restore()
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn

from .layers.resample import BLUR_IMPLS, set_blur

__all__ = [
    "BLUR_IMPLS",
    "COMPILE_MODES",
    "DTYPES",
    "AutocastOptimWrapper",
    "FastPaths",
    "apply_fast_paths",
    "compile_model",
    "compiled_modules",
    "model_network",
    "mixed_precision_optim_wrappers",
    "reference_mode",
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
_CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")
# keys of earlier versions, each with what replaced it (a config that still has one fails with this)
REMOVED_KEYS = {
    "fused_fir": 'use blur="folded" (folded everywhere; the up/down split lost to it, docs/performance.md)',
    "fused_upsample": 'use blur="folded" (the "phase" form of the folded upsampling lost to the transposed one)',
    "separable_fir": 'use blur="separable"',
    "precise_heads": "the flow/RGB heads and the warp's sampling always stay in float32 "
    "(in bf16 they missed the 1e-2 error target for a few percent of speed, docs/performance.md)",
}


@dataclass
class FastPaths:
    """The switchable fast paths; the defaults are the plain eager float32 model.

    Attributes:
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"`` (autocast).
        channels_last: weights and inputs in ``torch.channels_last``.
        blur: how the resampling layers' blur runs: ``"depthwise"`` (the reference), ``"folded"`` (the
            fastest eager form on a GPU), ``"separable"`` (the fastest compiled one on a GPU) or
            ``"subpixel"`` (no transposed convolution); see
            :mod:`lmtk.layers.resample`.
        compile: None (eager) or a ``torch.compile`` mode (``"default"``, ``"reduce-overhead"``, ...);
            True is ``"default"``, False None.
        freeze: with ``compile``, let inductor treat the weights as constants in inference (folds the
            weight arithmetic, prepacks CPU convolutions); the compiled graphs then ignore later weight
            changes, so training never freezes.

    A config can carry these as ``fast_paths = dict(dtype="bfloat16", channels_last=True, ...)``.
    """

    dtype: str = "float32"
    channels_last: bool = False
    blur: str = "depthwise"
    compile: str | None = None
    freeze: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {self.dtype!r}")
        if self.blur not in BLUR_IMPLS:
            raise ValueError(f"blur must be one of {BLUR_IMPLS}, got {self.blur!r}")
        if isinstance(self.compile, bool):
            self.compile = "default" if self.compile else None
        if self.compile not in (None, *COMPILE_MODES):
            raise ValueError(f"compile must be None or one of {COMPILE_MODES}, got {self.compile!r}")
        for name in ("channels_last", "freeze"):
            value = getattr(self, name)
            if not isinstance(value, bool):  # a config's "no" or 0 would otherwise count as set or unset
                raise ValueError(f"{name} must be True or False, got {value!r}")

    @classmethod
    def from_config(cls, cfg: Mapping | None, **overrides) -> FastPaths:
        """From a config's ``fast_paths`` dict, with the overrides that are not None on top."""
        values = dict(cfg or {})
        for key in values:
            if key in REMOVED_KEYS:
                raise ValueError(f"fast_paths key {key!r} was removed: {REMOVED_KEYS[key]}")
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown fast_paths keys {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def inert_settings(self, training: bool = False) -> dict[str, str]:
        """The fields set to something that changes nothing in this combination, each with the reason
        (tools reject them when given on the command line and note them when a config sets them).

        Example:
            >>> FastPaths(freeze=True).inert_settings()
            {'freeze': 'only acts on compiled graphs: add compile'}
        """
        if self.freeze and training:
            return {"freeze": "is for inference only: training never freezes the weights"}
        if self.freeze and not self.compile:
            return {"freeze": "only acts on compiled graphs: add compile"}
        return {}

    def describe(self) -> str:
        parts = [self.dtype]
        if self.channels_last:
            parts.append("channels_last")
        if self.blur != "depthwise":
            parts.append(f"blur={self.blur}")
        if self.compile:
            parts.append(f"compile={self.compile}" + (" (frozen)" if self.freeze else ""))
        return " + ".join(parts)


# ---------------------------------------------------------------------------------------- fast paths
def model_network(model: nn.Module) -> nn.Module:
    """The generator network of an LIA model (unwrapped from DDP), or ``model`` itself."""
    return model.net if hasattr(model, "net") else model


def _memory_format(module: nn.Module) -> torch.memory_format:
    for p in module.parameters():
        if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1:
            return (
                torch.channels_last
                if p.is_contiguous(memory_format=torch.channels_last)
                else (torch.contiguous_format)
            )
    return torch.contiguous_format


def _clone_outputs(result):
    if isinstance(result, torch.Tensor):
        return result.clone()
    if isinstance(result, list | tuple):
        return type(result)(_clone_outputs(r) for r in result)
    return result


def compile_model(
    model: nn.Module,
    mode: str | None = "default",
    training: bool = False,
    dynamic: bool | None = False,
    freeze: bool = False,
) -> list[str]:
    """``torch.compile`` the encoder and generator (and, for training, discriminator and VGG) in place.

    Each module's ``forward`` is replaced by a compiled one on the instance, so parameter names, the
    state dict and checkpoints are unchanged; :func:`reference_mode` or ``restore`` undo it. Under the
    CUDA-graph modes (``"reduce-overhead"``, ``"max-autotune"``) outputs are cloned, because a graph's
    output buffers are overwritten by its next replay while the animator still holds them.

    Args:
        model: an LIA model (or an ``LIAGenerator``).
        mode: a ``torch.compile`` mode; ``"default"`` or None for the default.
        training: also compile the discriminator and the perceptual network.
        dynamic: ``torch.compile``'s ``dynamic``; False keeps one graph per shape (what CUDA graphs need).
        freeze: inductor's ``freezing`` for graphs compiled without gradients: weights become constants
            (a later change of the weights is not seen). Not allowed with ``training``.

    Returns:
        The names of the compiled modules.
    """
    if mode not in (None, *COMPILE_MODES):
        raise ValueError(f"mode must be None or one of {COMPILE_MODES}, got {mode!r}")
    mode = None if mode == "default" else mode
    if freeze and training:
        raise ValueError("freeze makes the weights constants: it is for inference only")
    net = model_network(model)
    targets = {"encoder": net.encoder, "synthesis": net.synthesis}
    if training:
        if getattr(model, "discriminator", None) is not None:
            targets["discriminator"] = model.discriminator
        perceptual = getattr(getattr(model, "loss", None), "perceptual", None)
        if perceptual is not None:
            targets["perceptual"] = perceptual.network
    for module in targets.values():
        module.__dict__.pop("forward", None)
        compiled = torch.compile(module.forward, mode=mode, dynamic=dynamic)
        if freeze:
            compiled = _frozen(compiled)
        if mode in _CUDAGRAPH_MODES:
            compiled = functools.wraps(module.forward)(
                lambda *args, _fn=compiled, **kwargs: _clone_outputs(_fn(*args, **kwargs))
            )
        module.forward = compiled
    return list(targets)


def _frozen(compiled: Callable) -> Callable:
    """Run ``compiled`` with inductor's ``freezing`` on. It must be the global setting while dynamo
    traces: dynamo reads it to lift the parameters as constants, and ``torch.compile(options=...)``
    only reaches inductor (with ``options={"freezing": True}`` nothing was frozen)."""

    import torch._inductor.config as inductor_config

    @functools.wraps(compiled)
    def run(*args, **kwargs):
        with inductor_config.patch(freezing=True):
            return compiled(*args, **kwargs)

    return run


def compiled_modules(model: nn.Module) -> list[nn.Module]:
    """The modules under ``model`` whose ``forward`` :func:`compile_model` replaced."""
    return [m for m in model.modules() if "forward" in m.__dict__]


def _uncompile(model: nn.Module) -> list[nn.Module]:
    compiled = compiled_modules(model)
    for module in compiled:
        del module.forward
    return compiled


def apply_fast_paths(model: nn.Module, paths: FastPaths, training: bool = False) -> Callable[[], None]:
    """Switch on ``paths``' model-side fast paths (memory format, blur, compile).

    The dtype is not a model property: it is applied by autocast where the model runs.

    Returns:
        ``restore()``, which switches them all off again (the plain model, bit-identical to before).
    """
    if paths.channels_last:
        model.to(memory_format=torch.channels_last)
    if paths.blur != "depthwise":
        set_blur(model, paths.blur)
    if paths.compile:
        compile_model(model, paths.compile, training=training, freeze=paths.freeze and not training)

    def restore() -> None:
        _uncompile(model)
        set_blur(model, "depthwise")
        model.to(memory_format=torch.contiguous_format)

    return restore


@contextlib.contextmanager
def reference_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Temporarily the plain model: eager, NCHW, depthwise blur; what was switched on comes back after."""
    blurs = {m: m.blur for m in model.modules() if getattr(m, "blur", "depthwise") != "depthwise"}
    memory_format = _memory_format(model)
    compiled = {m: m.__dict__["forward"] for m in compiled_modules(model)}
    _uncompile(model)
    set_blur(model, "depthwise")
    model.to(memory_format=torch.contiguous_format)
    try:
        yield model
    finally:
        for module, impl in blurs.items():
            module.blur = impl
        for module, forward in compiled.items():
            module.forward = forward
        model.to(memory_format=memory_format)


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """An mmengine ``OptimWrapper`` whose ``optim_context`` runs the forward under ``torch.autocast``.

    No loss scaling: meant for bfloat16, whose range is float32's. Works on any device type (mmengine's
    ``AmpOptimWrapper`` needs an accelerator and always scales the loss).

    Args:
        dtype: autocast dtype (``torch.bfloat16`` or its name).
        **kwargs: ``OptimWrapper``'s arguments (``optimizer``, ...).
    """

    def __init__(self, dtype: torch.dtype | str = torch.bfloat16, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cast_dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module):
        device_type = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(device_type, dtype=self.cast_dtype):
            yield


def mixed_precision_optim_wrappers(cfg: Mapping, dtype: str) -> dict:
    """An optim-wrapper config (one wrapper, or one per network under a constructor) whose wrappers run
    the forward under ``dtype``: bfloat16 with :class:`AutocastOptimWrapper`, float16 with mmengine's
    ``AmpOptimWrapper`` (dynamic loss scaling, CUDA only). A wrapper of another type than the plain
    ``OptimWrapper`` is left as configured."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    cfg = dict(cfg)
    if dtype == "float32":
        return cfg
    if "optimizer" not in cfg:
        return {k: mixed_precision_optim_wrappers(v, dtype) if _is_wrapper(v) else v for k, v in cfg.items()}
    if cfg.get("type", "OptimWrapper") not in ("OptimWrapper", OptimWrapper):
        return cfg
    if dtype == "float16":
        return {
            **cfg,
            "type": "AmpOptimWrapper",
            "dtype": "float16",
            "loss_scale": cfg.get("loss_scale", "dynamic"),
        }
    return {**cfg, "type": "AutocastOptimWrapper", "dtype": dtype}


def _is_wrapper(value) -> bool:
    return isinstance(value, Mapping) and "optimizer" in value
