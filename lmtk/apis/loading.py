"""``load_model`` and ``save_model``: one entry point for configs, lmtk and published checkpoints."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config

from ..checkpoint import (
    SAFETENSORS_SUFFIX,
    TORCH_SUFFIXES,
    CheckpointError,
    atomic_save,
    atomic_write,
    checkpoint_path,
    hub_checkpoint_path,
    is_hub_reference,
    load_checkpoint_file,
    to_safetensors,
    unwrapped_keys,
)
from ..config_file import CONFIG_SUFFIXES, read_config, read_stored_config
from ..models.lia_keys import from_published, is_published, published_model_config
from ..models.liax_keys import from_liax, is_liax_state_dict, liax_model_config
from ..registry import build, check_registered_types
from ..version import __version__
from .device import check_device

__all__ = ["load_model", "model_config_of", "save_model"]


def _model_cfg(cfg: Config | Mapping, with_loss: bool) -> dict:
    """The model entry of a config, or a model config itself (what :func:`model_config_of` returns)."""
    model = cfg.get("model") if "model" in cfg else (cfg if "type" in cfg else None)
    if model is None:
        raise CheckpointError("the config has no 'model' entry (nor a model 'type' of its own)")
    if not (isinstance(model, Mapping) or hasattr(model, "to_dict")):  # a dict, ConfigDict or Config
        raise CheckpointError(
            f"the config's 'model' entry is {model!r:.40}, not a dict of the model's settings "
            f"(model = dict(type=..., ...))"
        )
    model = copy.deepcopy(model.to_dict() if hasattr(model, "to_dict") else dict(model))
    if not with_loss:
        model["loss"] = None
    return model


def _build(model_cfg: dict, device: str | torch.device) -> torch.nn.Module:
    model = build(model_cfg, "models")
    model.config = copy.deepcopy(model_cfg)
    model.published_extras = {}
    return model.to(device).eval()


def model_config_of(model: torch.nn.Module) -> dict:
    """The config dict a model was built from (set by :func:`load_model`)."""
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError(
            "this model carries no config; build it with lmtk.load_model or pass config= explicitly"
        )
    return copy.deepcopy(config)


def load_model(
    path: str | os.PathLike,
    config: str | os.PathLike | Mapping | None = None,
    device: str | torch.device = "cpu",
    with_loss: bool = False,
    trust: bool = False,
) -> torch.nn.Module:
    """Load an LIA model from a config, an lmtk checkpoint or a published LIA checkpoint.

    Args:
        path: a config file (``.py``: fresh weights), an lmtk checkpoint (the architecture comes from
            the config stored in it), a training work dir (its newest checkpoint), a published LIA
            checkpoint (``{'gen': ...}``) or LIA-X checkpoint (``lia-x.pt``, a bare state dict), whose
            architecture is inferred from their tensor shapes, or a ``.safetensors`` file written by
            :func:`save_model`. A file in a Hugging Face Hub repository is named ``hf://OWNER/REPO/FILE``
            (read from the local Hub cache, see :func:`lmtk.checkpoint.hub_checkpoint_path`).
        config: a config file or dict (a whole config, or its ``model`` entry as :func:`model_config_of`
            returns it) that overrides the architecture stored in an lmtk checkpoint; needed for a file
            that holds only ``model.state_dict()``.
        device: where to put the model.
        with_loss: also build the loss set (needs VGG19 weights for the default loss); inference
            does not need it.
        trust: the file comes from someone you trust: read it even if it needs more than weights to
            unpickle (which can run code), and run its stored config as Python. Without it such a file
            is refused with a :class:`~lmtk.checkpoint.CheckpointError` naming what it needs.

    Returns:
        The model in eval mode.

    Example:
        >>> model = load_model("configs/lia/lia_vox_m20.py")  # doctest: +SKIP
        >>> out = model.transfer(source, driving, mode="absolute")  # doctest: +SKIP
    """
    path = hub_checkpoint_path(path) if is_hub_reference(path) else Path(path)
    device = check_device(device)
    if path.suffix in CONFIG_SUFFIXES:
        if config is not None:
            raise CheckpointError(
                f"{path} is a config, not a checkpoint: load it alone for a model with fresh weights, or load "
                f"a trained checkpoint with it as the config"
            )
        return _build(_model_cfg(read_config(path), with_loss), device)
    path = checkpoint_path(path)
    checkpoint = load_checkpoint_file(path, trust=trust)
    if is_liax_state_dict(checkpoint):  # LIA-X's published lia-x.pt: a bare generator state dict
        model = _build(_override(config, with_loss) or liax_model_config(checkpoint), "cpu")
        model.load_state_dict(from_liax(checkpoint, model.state_dict()), strict=False)
        return model.to(device)
    if (
        isinstance(checkpoint, Mapping)
        and not is_published(checkpoint)
        and any(str(k).startswith("enc.") for k in checkpoint)
    ):
        checkpoint = {"gen": checkpoint}  # a bare published generator state dict
    if is_published(checkpoint):
        model_cfg = _override(config, with_loss) or published_model_config(checkpoint)
        model = _build(model_cfg, "cpu")
        state, extras = from_published(checkpoint, model.state_dict())
        model.load_state_dict(state, strict=False)
        model.published_extras = extras
        return model.to(device)
    if (
        isinstance(checkpoint, Mapping)
        and checkpoint
        and all(torch.is_tensor(value) for value in checkpoint.values())
        and any(str(key).startswith("generator.") for key in checkpoint)
    ):
        checkpoint = {"state_dict": checkpoint}  # torch.save(model.state_dict()): needs config=
    if not isinstance(checkpoint, Mapping) or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{path} is neither an lmtk checkpoint (a dict with 'state_dict') nor a published LIA checkpoint "
            f"(a dict with 'gen')"
        )
    meta = checkpoint.get("meta") or {}
    if config is not None:
        cfg = read_config(config) if not isinstance(config, Mapping) else Config(dict(config))
    elif meta.get("model_config"):  # a safetensors file: the model's config as JSON
        cfg = Config(dict(model=meta["model_config"]))
    else:
        text = meta.get("cfg")
        if not text:
            raise CheckpointError(
                f"{path} stores no config; pass config=... (the training config, or the model's config dict)"
            )
        try:
            cfg = read_stored_config(text, str(path), trust=trust)
        except ValueError as error:
            raise CheckpointError(str(error)) from None
    model_cfg = _model_cfg(cfg, with_loss)
    if config is None and not trust:  # the file's own config: data, but building runs what it names
        try:
            check_registered_types(model_cfg, str(path))
        except ValueError as error:
            raise CheckpointError(str(error)) from None
    model = _build(model_cfg, "cpu")
    _load_state(model, unwrapped_keys(checkpoint["state_dict"]), path)
    model.published_extras = dict(meta.get("published_extras") or {})
    return model.to(device)


def _override(config: str | os.PathLike | Mapping | None, with_loss: bool) -> dict | None:
    """The model config that ``config=`` gives a published checkpoint instead of the inferred one."""
    if config is None:
        return None
    return _model_cfg(read_config(config) if not isinstance(config, Mapping) else config, with_loss)


def _load_state(model: torch.nn.Module, state: Mapping[str, Any], path: Path) -> None:
    expected = model.state_dict()
    networks = ("generator.", "discriminator.")
    missing = [k for k in expected if k.startswith(networks) and k not in state]
    if missing:
        raise CheckpointError(
            f"{path} lacks {len(missing)} tensor(s) of this architecture, e.g. {missing[0]}"
        )
    unknown = [k for k in state if k.startswith(networks) and k not in expected]
    if unknown and not all(k.startswith("discriminator.") for k in unknown):
        raise CheckpointError(f"{path} has tensor {unknown[0]}, which this architecture does not have")
    for key in expected:
        if key in state and tuple(state[key].shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{path}: shape mismatch for {key}: checkpoint {tuple(state[key].shape)}, "
                f"model {tuple(expected[key].shape)}; is it a checkpoint of another architecture or size?"
            )
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


SAVE_FORMATS = ("lmtk", "safetensors")


def save_model(
    model: torch.nn.Module,
    path: str | os.PathLike,
    config: Mapping | None = None,
    format: str | None = None,
) -> None:
    """Write ``model`` with its config, atomically, so that :func:`load_model` rebuilds it.

    Args:
        model: an LIA model (its config comes from :func:`load_model` or ``config``).
        path: the file to write; an existing one is replaced.
        config: the model's config dict, for a model built without :func:`load_model`.
        format: ``"safetensors"`` (tensors and a JSON header only, so loading it can never run code:
            the format to share models in) or ``"lmtk"`` (a PyTorch checkpoint in mmengine's layout,
            config embedded). Default: ``"safetensors"`` for a ``.safetensors`` path, else ``"lmtk"``.

    A failed write (a full disk, a read-only folder, a folder at ``path``) raises one
    :class:`~lmtk.checkpoint.CheckpointWriteError` naming ``path`` and leaves no file behind.
    """
    path = Path(path)
    if format is None:
        format = "safetensors" if path.suffix == SAFETENSORS_SUFFIX else "lmtk"
    if format not in SAVE_FORMATS:
        raise ValueError(f"format={format!r}: expected one of {', '.join(SAVE_FORMATS)}")
    if (format == "safetensors") != (path.suffix == SAFETENSORS_SUFFIX):
        wanted = SAFETENSORS_SUFFIX if format == "safetensors" else f"one of {', '.join(TORCH_SUFFIXES)}"
        raise ValueError(f"{path}: a {format} file is named with {wanted}")
    model_cfg = dict(config) if config is not None else model_config_of(model)
    extras = getattr(model, "published_extras", None)
    if format == "safetensors":
        atomic_write(to_safetensors(model.state_dict(), model_cfg, extras, __version__), path)
        return
    meta = {"cfg": Config(dict(model=model_cfg)).pretty_text, "lmtk_version": __version__}
    if extras:
        meta["published_extras"] = extras
    atomic_save({"meta": meta, "state_dict": model.state_dict()}, path)
