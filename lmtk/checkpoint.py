"""Read and write checkpoints: lmtk's own (mmengine format), safetensors and the published LIA format.

Reading never runs code from the file: PyTorch files are unpickled weights-only, allowing only what
lmtk's, mmengine's and the published checkpoints hold (:func:`load_checkpoint_file`), unless the user
vouches for the file (``trust``). Writing is atomic, with the umask's mode, and fails as one line.

The published format is ``torch.save({'gen': G.state_dict(), 'dis': D.state_dict(), ...})``. Its keys are
mapped onto lmtk's module names by the rules below; its constant FIR buffers are ignored on load and
recomputed on export. A missing, unknown or mis-shaped key fails with an error that names it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import io
import json
import os
import pickle
import re
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .functional.fir import fir_kernel

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "CheckpointError",
    "CheckpointWriteError",
    "SAFETENSORS_SUFFIX",
    "TORCH_SUFFIXES",
    "TRUST_HINT",
    "UntrustedCheckpointError",
    "atomic_save",
    "atomic_write",
    "checkpoint_path",
    "from_published",
    "hub_checkpoint_path",
    "is_hub_reference",
    "is_published",
    "load_checkpoint_file",
    "BIAS4D",
    "FLOW_HEAD_RULES",
    "MOD_WEIGHT",
    "SAME",
    "map_keys",
    "published_model_config",
    "safe_unpickling",
    "stores_config",
    "to_published",
    "to_safetensors",
    "unreadable_checkpoint",
]


#: what a checkpoint file is called (a PyTorch one, a safetensors one); other outputs are refused
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt")
SAFETENSORS_SUFFIX = ".safetensors"
CHECKPOINT_SUFFIXES = (*TORCH_SUFFIXES, SAFETENSORS_SUFFIX)

#: how a user vouches for a file that needs more than weights: named in every refusal
TRUST_HINT = "--trust-checkpoint (trust=True in Python) if you trust where the file came from"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says which key."""


class UntrustedCheckpointError(CheckpointError):
    """A checkpoint whose unpickling needs a type beyond weights and training state: it could run code."""


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (full disk, read-only folder, ...); the message says where."""


def _bias4d(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1)


def _bias4d_back(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(1, -1, 1, 1)


def _mod_weight(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[1:])


def _mod_weight_back(t: torch.Tensor) -> torch.Tensor:
    return t.unsqueeze(0)


#: how a published tensor is reshaped, (to lmtk, to published): kept, a (1, C, 1, 1) bias, a modulated
#: conv's (1, O, I, k, k) weight; shared with lmtk.models.liax_keys
SAME = (None, None)
BIAS4D = (_bias4d, _bias4d_back)
MOD_WEIGHT = (_mod_weight, _mod_weight_back)

# (published template, lmtk template, (to lmtk, to published)). ``{b}`` stands for a number; an index
# may be an expression of it (``{b+1}``, ``{2*s+1}``) so each rule reads, and inverts, both ways.
_CONV_LAYER = [("0.weight", "conv.weight", SAME), ("1.bias", "act.bias", BIAS4D)]
_RES_BLOCK = [
    ("conv1.0.weight", "conv1.conv.weight", SAME),
    ("conv1.1.bias", "conv1.act.bias", BIAS4D),
    ("conv2.1.weight", "conv2.conv.weight", SAME),
    ("conv2.2.bias", "conv2.act.bias", BIAS4D),
    ("skip.1.weight", "skip.conv.weight", SAME),
]
_STYLED = [
    ("conv.weight", "conv.weight", MOD_WEIGHT),
    ("conv.modulation.weight", "conv.affine.weight", SAME),
    ("conv.modulation.bias", "conv.affine.bias", SAME),
    ("noise.weight", "noise_strength", SAME),
    ("activate.bias", "act.bias", BIAS4D),
]
FLOW_HEAD_RULES = [
    ("bias", "bias", BIAS4D),
    ("conv.weight", "conv.weight", MOD_WEIGHT),
    ("conv.modulation.weight", "conv.affine.weight", SAME),
    ("conv.modulation.bias", "conv.affine.bias", SAME),
]
_RGB_HEAD = [
    ("bias", "bias", BIAS4D),
    ("conv.0.weight", "conv.conv.weight", SAME),
    ("conv.1.bias", "conv.act.bias", BIAS4D),
]

Rule = tuple[str, str, tuple]


def _generator_rules(num_blocks: int) -> list[Rule]:
    rules = [(f"enc.net_app.convs.0.{p}", f"encoder.stem.{t}", f) for p, t, f in _CONV_LAYER]
    rules += [(f"enc.net_app.convs.{{b+1}}.{p}", f"encoder.blocks.{{b}}.{t}", f) for p, t, f in _RES_BLOCK]
    rules += [
        (f"enc.net_app.convs.{num_blocks + 1}.weight", "encoder.to_code.weight", SAME),
        ("enc.fc.{b}.weight", "motion_mlp.layers.{b}.weight", SAME),
        ("enc.fc.{b}.bias", "motion_mlp.layers.{b}.bias", SAME),
        ("dec.direction.weight", "motion_basis.weight", SAME),
        ("dec.input.input", "synthesis.const_input", SAME),
    ]
    rules += [(f"dec.conv1.{p}", f"synthesis.conv1.{t}", f) for p, t, f in _STYLED]
    rules += [(f"dec.convs.{{2*s}}.{p}", f"synthesis.stages.{{s}}.conv_up.{t}", f) for p, t, f in _STYLED]
    rules += [(f"dec.convs.{{2*s+1}}.{p}", f"synthesis.stages.{{s}}.conv.{t}", f) for p, t, f in _STYLED]
    rules += [
        (f"dec.to_flows.{{s}}.{p}", f"synthesis.stages.{{s}}.to_flow.{t}", f) for p, t, f in FLOW_HEAD_RULES
    ]
    rules += [(f"dec.to_rgbs.{{s}}.{p}", f"synthesis.stages.{{s}}.to_rgb.{t}", f) for p, t, f in _RGB_HEAD]
    return rules


def _discriminator_rules() -> list[Rule]:
    rules = [(f"convs.0.{p}", f"stem.{t}", f) for p, t, f in _CONV_LAYER]
    rules += [(f"convs.{{b+1}}.{p}", f"blocks.{{b}}.{t}", f) for p, t, f in _RES_BLOCK]
    rules += [
        ("final_conv.0.weight", "final_conv.conv.weight", SAME),
        ("final_conv.1.bias", "final_conv.act.bias", BIAS4D),
        ("final_linear.0.weight", "final_fc.weight", SAME),
        ("final_linear.0.bias", "final_fc.bias", SAME),
        ("final_linear.1.weight", "logit.weight", SAME),
        ("final_linear.1.bias", "logit.bias", SAME),
    ]
    return rules


_EXPR = re.compile(r"\{(?:(\d+)\*)?([a-z])(?:\+(\d+))?\}")


def _template_regex(template: str) -> re.Pattern:
    parts, last = [], 0
    for m in _EXPR.finditer(template):
        parts += [re.escape(template[last : m.start()]), r"(\d+)"]
        last = m.end()
    return re.compile("".join(parts) + re.escape(template[last:]))


def _translate(key: str, source: str, target: str) -> str | None:
    """Rewrite ``key`` matching template ``source`` into template ``target``, solving the indices."""
    match = _template_regex(source).fullmatch(key)
    if match is None:
        return None
    values = {}
    for m, number in zip(_EXPR.finditer(source), match.groups()):
        mul, name, add = int(m.group(1) or 1), m.group(2), int(m.group(3) or 0)
        value, remainder = divmod(int(number) - add, mul)
        if remainder or value < 0 or values.setdefault(name, value) != value:
            return None
    return _EXPR.sub(lambda m: str(int(m.group(1) or 1) * values[m.group(2)] + int(m.group(3) or 0)), target)


def _map_keys(state: Mapping[str, torch.Tensor], rules: list[Rule], to_lmtk: bool) -> tuple[dict, list[str]]:
    mapped, unknown = {}, []
    for key, value in state.items():
        for published, lmtk_name, (forward, backward) in rules:
            source, target, convert = (
                (published, lmtk_name, forward) if to_lmtk else (lmtk_name, published, backward)
            )
            name = _translate(key, source, target)
            if name is not None:
                mapped[name] = convert(value) if convert else value
                break
        else:
            unknown.append(key)
    return mapped, unknown


#: rename a state dict's keys by ``(published, lmtk, converters)`` rules (also used for LIA-X's format)
map_keys = _map_keys


# Published tensors that lmtk's networks do not use: ``to_rgb1`` is built but never called by the
# published forward pass. They are kept beside the weights so an export round-trips exactly.
_UNUSED_GENERATOR_KEYS = re.compile(r"dec\.to_rgb1\..*")
_BUFFER_KEYS = re.compile(r".*\.kernel$")


def _num_encoder_blocks(keys) -> int:
    return len({k.split(".")[3] for k in keys if k.startswith("enc.net_app.convs.")}) - 2


def is_published(checkpoint: Any) -> bool:
    """True for a dict in the published LIA format (``'gen'`` holding ``enc.*``/``dec.*`` keys)."""
    return (
        isinstance(checkpoint, Mapping)
        and isinstance(checkpoint.get("gen"), Mapping)
        and any(str(k).startswith("enc.net_app.") for k in checkpoint["gen"])
    )


def published_model_config(checkpoint: Mapping) -> dict:
    """The lmtk model config of a published checkpoint, inferred from its tensor shapes."""
    gen = checkpoint["gen"]
    try:
        size = 2 ** (_num_encoder_blocks(gen) + 2)
        latent_dim = gen["enc.fc.0.weight"].shape[0]
        num_directions = gen["dec.direction.weight"].shape[1]
        finest_channels = gen["enc.net_app.convs.0.0.weight"].shape[0]
        coarsest_channels = gen["dec.input.input"].shape[1]
    except (KeyError, IndexError) as error:
        raise CheckpointError(f"not a complete published LIA generator: missing {error}") from error
    # base and cap reproduce the published table for any channel multiplier, and narrower models too
    shape = dict(size=size, channel_base=finest_channels * size, max_channels=coarsest_channels)
    return dict(
        type="lmtk.LIA.v1",
        encoder=dict(type="lmtk.LIAEncoder.v1", latent_dim=latent_dim, **shape),
        generator=dict(
            type="lmtk.FlowGenerator.v1",
            latent_dim=latent_dim,
            warper=dict(type="lmtk.FlowWarper.v1", align_corners=False),
            **shape,
        ),
        motion_basis=dict(
            type="lmtk.GramSchmidtBasis.v1", latent_dim=latent_dim, num_directions=num_directions
        ),
        discriminator=dict(type="lmtk.StyleGAN2Discriminator.v1", **shape) if "dis" in checkpoint else None,
    )


def from_published(checkpoint: Mapping, model_state: Mapping[str, torch.Tensor]) -> tuple[dict, dict]:
    """Map a published checkpoint onto ``model_state`` (an lmtk LIA ``state_dict()``).

    Returns ``(state_dict, extras)``: the lmtk state dict, checked key by key and shape by shape against
    ``model_state``, and the published tensors lmtk does not use (kept for an exact export).
    """
    gen = {k: v for k, v in checkpoint["gen"].items() if not _BUFFER_KEYS.fullmatch(k)}
    extras = {k: gen.pop(k) for k in list(gen) if _UNUSED_GENERATOR_KEYS.fullmatch(k)}
    mapped, unknown = _map_keys(gen, _generator_rules(_num_encoder_blocks(gen)), to_lmtk=True)
    if unknown:
        raise CheckpointError(f"unknown key(s) in the published generator: {', '.join(unknown[:5])}")
    state = {f"generator.{k}": v for k, v in mapped.items()}
    expected = {k: v for k, v in model_state.items() if k.startswith("generator.")}
    if checkpoint.get("dis") is not None and any(k.startswith("discriminator.") for k in model_state):
        dis = {k: v for k, v in checkpoint["dis"].items() if not _BUFFER_KEYS.fullmatch(k)}
        mapped, unknown = _map_keys(dis, _discriminator_rules(), to_lmtk=True)
        if unknown:
            raise CheckpointError(f"unknown key(s) in the published discriminator: {', '.join(unknown[:5])}")
        state.update({f"discriminator.{k}": v for k, v in mapped.items()})
        expected.update({k: v for k, v in model_state.items() if k.startswith("discriminator.")})
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(
            f"published checkpoint lacks {len(missing)} tensor(s) the model needs, e.g. {missing[0]}"
        )
    for key, value in state.items():
        if key not in expected:
            raise CheckpointError(f"published checkpoint has {key}, which this model does not have")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"shape mismatch for {key}: checkpoint {tuple(value.shape)}, model {tuple(expected[key].shape)}"
            )
    return state, extras


def _published_buffers(published_keys, encoder_prefix: str) -> dict[str, torch.Tensor]:
    """The constant FIR kernels the published format stores, rebuilt bit-exactly."""
    down, up = fir_kernel((1, 3, 3, 1)), fir_kernel((1, 3, 3, 1), gain=4.0)
    buffers = {}
    for key in published_keys:
        block = re.fullmatch(re.escape(encoder_prefix) + r"(\d+)\.conv1\.0\.weight", key)
        if block:
            buffers[f"{encoder_prefix}{block.group(1)}.conv2.0.kernel"] = down.clone()
            buffers[f"{encoder_prefix}{block.group(1)}.skip.0.kernel"] = down.clone()
        stage = re.fullmatch(r"dec\.to_rgbs\.(\d+)\.bias", key)
        if stage:
            index = int(stage.group(1))
            buffers[f"dec.convs.{2 * index}.conv.blur.kernel"] = up.clone()
            buffers[f"dec.to_rgbs.{index}.upsample.kernel"] = up.clone()
            buffers[f"dec.to_flows.{index}.upsample.kernel"] = up.clone()
    return buffers


def _export(state: Mapping[str, torch.Tensor], rules: list[Rule], prefix: str) -> dict[str, torch.Tensor]:
    local = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    mapped, unknown = _map_keys(local, rules, to_lmtk=False)
    if unknown:
        raise CheckpointError(f"{prefix}{unknown[0]} has no counterpart in the published format")
    return mapped


def to_published(
    model_state: Mapping[str, torch.Tensor], extras: Mapping[str, torch.Tensor] | None = None
) -> dict[str, dict[str, torch.Tensor]]:
    """An lmtk LIA ``state_dict()`` in the published format: ``{'gen': ..., 'dis': ...}``."""
    num_blocks = len({k.split(".")[3] for k in model_state if k.startswith("generator.encoder.blocks.")})
    gen = _export(model_state, _generator_rules(num_blocks), "generator.")
    gen.update(_published_buffers(list(gen), "enc.net_app.convs."))
    if not extras:
        # the published forward never reads to_rgb1; zeros keep the format loadable by the published code
        channels = model_state["generator.synthesis.const_input"].shape[1]
        extras = {
            "dec.to_rgb1.bias": torch.zeros(1, 3, 1, 1),
            "dec.to_rgb1.conv.0.weight": torch.zeros(3, channels, 1, 1),
            "dec.to_rgb1.conv.1.bias": torch.zeros(1, 3, 1, 1),
        }
    gen.update(extras)
    result = {"gen": gen}
    if any(k.startswith("discriminator.") for k in model_state):
        dis = _export(model_state, _discriminator_rules(), "discriminator.")
        dis.update(_published_buffers(list(dis), "convs."))
        result["dis"] = dis
    return result


def checkpoint_path(path: str | os.PathLike) -> Path:
    """The checkpoint file ``path`` means: itself, or for a training work dir the one it saved last.

    A work dir names its newest checkpoint in ``last_checkpoint`` (by its full path); the file of that
    name inside the folder is taken, so a moved or copied work dir means its own checkpoint.
    """
    path = Path(path)
    if not path.is_dir():
        if not path.is_file():
            raise CheckpointError(f"checkpoint not found: {path}")
        return path
    record = path / "last_checkpoint"
    if not record.is_file():
        raise CheckpointError(
            f"{path} is a folder, not a checkpoint: pass a checkpoint file in it (.pth), or a training work "
            f"dir (it names its newest checkpoint in last_checkpoint)"
        )
    text = record.read_text().strip()
    if not text:
        raise CheckpointError(f"{record} is empty; pass a checkpoint file in {path} (iter_*.pth) instead")
    named = Path(text)
    # the file in this folder first: a copied work dir still names the checkpoints of the original
    for candidate in (path / named.name, named):
        if candidate.is_file():
            return candidate
    raise CheckpointError(f"{record} names {named}, which does not exist; pass a checkpoint file instead")


# a network that distributed training wrapped (generator.module.*): how such runs used to save it
_WRAPPED_NETWORK_KEY = re.compile(r"^(generator|discriminator)\.module\.")
#: ``revise_keys`` for mmengine's loading: a whole-model wrapper's and a wrapped network's ``module.``
WRAPPER_PREFIXES = [(r"^module\.", ""), (_WRAPPED_NETWORK_KEY.pattern, r"\1.")]


def unwrapped_keys(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with the ``module.`` of a distributed wrapper taken out of each network's keys."""
    return {_WRAPPED_NETWORK_KEY.sub(r"\1.", key): value for key, value in state.items()}


HUB_PREFIX = "hf://"


def is_hub_reference(path: object) -> bool:
    """True for ``hf://OWNER/REPO/FILE``: a file in a Hugging Face Hub repository."""
    return isinstance(path, str) and path.startswith(HUB_PREFIX)


def hub_checkpoint_path(reference: str) -> Path:
    """The local file of ``hf://OWNER/REPO/FILE``, from the Hub cache (``HF_HUB_CACHE``) when it is there.

    A file not in the cache is downloaded into it, unless ``HF_HUB_OFFLINE=1``; if it can be neither
    found nor downloaded, one :class:`CheckpointError` line says how to get it.

    Example:
        >>> hub_checkpoint_path("hf://YaohuiW/LIA-X/lia-x.pt")  # doctest: +SKIP
        PosixPath('/home/me/.cache/huggingface/hub/models--YaohuiW--LIA-X/snapshots/.../lia-x.pt')
    """
    parts = reference[len(HUB_PREFIX) :].split("/", 2)
    if len(parts) != 3 or not all(parts):
        raise CheckpointError(
            f"{reference!r} is not a Hub file: write hf://OWNER/REPO/FILE, e.g. hf://YaohuiW/LIA-X/lia-x.pt"
        )
    repo_id, filename = "/".join(parts[:2]), parts[2]
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as error:
        raise CheckpointError(
            f"loading {reference} needs huggingface_hub (pip install huggingface_hub)"
        ) from error
    try:
        return Path(hf_hub_download(repo_id, filename, local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the cache: downloaded below unless offline
        pass
    try:
        return Path(hf_hub_download(repo_id, filename))
    except Exception as error:  # noqa: BLE001 - one line instead of the Hub's traceback
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise CheckpointError(
            f"cannot get {filename} of Hugging Face Hub repository {repo_id}: it is not in the local Hub cache "
            f"and could not be downloaded ({reason}); download it where there is a network "
            f"(huggingface-cli download {repo_id} {filename}) and copy the cache, or pass the file's path"
        ) from error


def unreadable_checkpoint(path: str | os.PathLike, error: BaseException | str) -> CheckpointError:
    """The error for a checkpoint file ``torch.load`` cannot read: what is likely wrong and what to do."""
    path = Path(path)
    if not path.exists():
        return CheckpointError(f"checkpoint not found: {path}")
    if path.is_file() and path.stat().st_size == 0:
        what = "the file is empty"
    else:
        reason = (
            " ".join(str(error).split()).split(". ")[0].rstrip(".") or type(error).__name__
        )  # torch's first sentence
        what = f"the file is cut short or not a PyTorch checkpoint ({reason})"
    return CheckpointError(
        f"cannot read checkpoint {path}: {what}; use another checkpoint (an earlier iter_*.pth of the same "
        f"run) or copy the file again"
    )


def _history_statistic(owner: type, name: str):
    """``getattr`` as mmengine's ``HistoryBuffer`` pickles its statistics (``getattr(HistoryBuffer,
    'mean')``), allowed for exactly those: a general ``getattr`` would reach anything from any object."""
    from mmengine.logging import HistoryBuffer

    if owner is HistoryBuffer and name in ("min", "max", "current", "mean"):
        return getattr(owner, name)
    wanted = (
        f"{getattr(owner, '__module__', '?')}.{getattr(owner, '__qualname__', type(owner).__name__)}.{name}"
    )
    raise pickle.UnpicklingError(f"Unsupported global: GLOBAL {wanted} (by getattr) was not allowed")


@functools.cache
def _allowed_globals() -> tuple:
    """What lmtk's, mmengine's and the published checkpoints pickle besides tensors and plain data: the
    published code's ``argparse.Namespace`` of options, the message hub's ``HistoryBuffer`` of logged
    values, NumPy arrays and scalars (RNG states, logged values). None of them runs code when built."""
    import numpy as np
    from mmengine.logging import HistoryBuffer

    numpy_core = np._core if hasattr(np, "_core") else np.core
    allowed = [argparse.Namespace, HistoryBuffer, (_history_statistic, "builtins.getattr")]
    # a dtype is rebuilt as an instance of its class (numpy.dtypes.Float64DType, ...): the plain ones
    allowed += [
        np.ndarray,
        np.dtype,
        *sorted({type(np.dtype(c)) for c in np.typecodes["All"] if c not in "OV"}, key=str),
    ]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # NumPy 1 and 2 write either
        allowed += [(numpy_core.multiarray._reconstruct, f"{module}._reconstruct")]
        allowed += [(numpy_core.multiarray.scalar, f"{module}.scalar")]
    return tuple(allowed)


def safe_unpickling():
    """A context in which ``torch.load(weights_only=True)`` also reads the types of :func:`_allowed_globals`."""
    return torch.serialization.safe_globals(list(_allowed_globals()))


def _weights_only_reason(error: BaseException) -> str:
    """The part of PyTorch's weights-only error that says what went wrong, without its advice."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    text = text.split("Check the documentation of torch.load")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip() and "weights_only" not in line]
    return " ".join(lines) or type(error).__name__


def _refused_type(reason: str) -> str | None:
    """The type or function a weights-only load refused, named in ``reason``; None for a broken file."""
    for pattern in (
        r"GLOBAL (\S+?)(?: was not| whose|\.?$|\s)",
        r"unrecognized function (.+?)(?: which|$)",
        r"but got (<.+?>)",
    ):
        match = re.search(pattern, reason)
        if match:
            return match.group(1)
    return None


def _is_safetensors(path: Path) -> bool:
    """safetensors files start with the 8-byte length of a JSON header (PyTorch's with a zip or pickle)."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000


_EXTRAS_PREFIX = "published_extras."


def to_safetensors(
    state: Mapping[str, torch.Tensor], model_config: Mapping, extras: Mapping | None, version: str
) -> bytes:
    """``state`` and the published extras in the safetensors format, the model config as JSON metadata."""
    from safetensors.torch import save

    tensors = {key: value.detach().cpu().contiguous() for key, value in state.items()}
    tensors.update({_EXTRAS_PREFIX + k: v.detach().cpu().contiguous() for k, v in (extras or {}).items()})
    try:
        config_text = json.dumps(model_config)
    except TypeError as error:
        raise ValueError(
            f"the model config cannot be stored as JSON in a safetensors file: {error}"
        ) from None
    return save(tensors, metadata={"format": "pt", "model_config": config_text, "lmtk_version": version})


def _load_safetensors(path: Path, map_location) -> dict:
    """A safetensors file written by :func:`lmtk.save_model`, as an lmtk checkpoint dict.

    safetensors holds tensors and a string-to-string header only, so reading it runs no code: the model
    config is JSON in the header, the published extras are tensors under ``published_extras.``.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    device = map_location if isinstance(map_location, str | torch.device) else "cpu"
    try:
        tensors = load_file(path, device=str(device))
        with safe_open(path, framework="pt") as handle:
            header = handle.metadata() or {}
        model_config = json.loads(header["model_config"]) if "model_config" in header else None
    except (SafetensorError, OSError, ValueError) as error:
        raise unreadable_checkpoint(path, error) from None
    extras = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(_EXTRAS_PREFIX)}
    state = {k: v for k, v in tensors.items() if not k.startswith(_EXTRAS_PREFIX)}
    meta = {
        "model_config": model_config,
        "published_extras": extras,
        "lmtk_version": header.get("lmtk_version"),
    }
    return {"meta": meta, "state_dict": state}


def stores_config(checkpoint: Mapping) -> bool:
    """Whether an lmtk checkpoint holds its model's config: as text (``.pth``) or as JSON (safetensors)."""
    meta = checkpoint.get("meta") or {}
    return bool(meta.get("cfg") or meta.get("model_config"))


def load_checkpoint_file(path: str | os.PathLike, trust: bool = False, map_location: Any = "cpu") -> Any:
    """Read a checkpoint without running code in it; a file that cannot be read is one clear error.

    A PyTorch file is unpickled with ``weights_only=True``, allowing the few types lmtk's, mmengine's
    and the published checkpoints hold (:func:`_allowed_globals`); one that needs any other is refused
    with an :class:`UntrustedCheckpointError` naming the type, unless ``trust`` (the user vouches for
    the file: full unpickling, which can run code). A safetensors file never runs code. ``path`` may
    also be a training work dir: its newest checkpoint is read (:func:`checkpoint_path`).
    """
    path = checkpoint_path(path)
    try:
        safetensors = _is_safetensors(path)
    except OSError as error:
        raise unreadable_checkpoint(path, error.strerror or error) from None
    if safetensors:
        return _load_safetensors(path, map_location)
    try:
        # PyTorch warns about odd pickles before failing: the error below says all there is to say
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if trust:
                return torch.load(path, map_location=map_location, weights_only=False)
            with safe_unpickling():
                return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _weights_only_reason(error) if not trust else str(error)
        wanted = None if trust else _refused_type(reason)
        if wanted is None:
            raise unreadable_checkpoint(path, reason) from None
        raise UntrustedCheckpointError(
            f"refusing to load {path}: it needs {wanted}, which is not part of a checkpoint of weights and "
            f"unpickling it could run code; use a .safetensors file, or pass {TRUST_HINT}"
        ) from None
    except Exception as error:  # noqa: BLE001 - a truncated zip, a random file, ...
        raise unreadable_checkpoint(path, error) from None


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (setting it is process-wide)."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        with open("/proc/self/status") as status:
            return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_error(path: Path, error: OSError) -> CheckpointWriteError:
    """One line for a write that failed: what happened to ``path`` and what to do."""
    if path.is_dir():
        what = f"{path} is a folder; name a file in it, e.g. {path / 'model.pth'}"
    elif error.errno in (errno.ENOSPC, errno.EDQUOT):
        what = f"cannot write {path}: the disk is full; free some space there or write elsewhere"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = f"cannot write {path}: {path.parent} is not writable ({error.strerror}); write elsewhere"
    else:
        what = f"cannot write {path}: {error.strerror or error}"
    result = CheckpointWriteError(what)
    result.errno = error.errno
    return result


def atomic_write(data: bytes | memoryview, path: str | os.PathLike) -> None:
    """Write ``data`` to a temporary file in the same folder, then rename: never a partial file.

    The file gets the mode a new file would (``0o666`` less the umask), as training checkpoints do; a
    failure (a full disk, a read-only folder, a folder at ``path``) is one :class:`CheckpointWriteError`
    naming ``path``, and leaves nothing behind.
    """
    path = Path(path)
    tmp = None
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "Is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~_umask())  # mkstemp makes it private (0600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise _write_error(path, error) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` ``obj`` to ``path`` by :func:`atomic_write`.

    Serialized in memory first, as mmengine does its checkpoints: a write that fails then fails as an
    ``OSError`` (PyTorch's own writer turns a full disk into an unrelated ``RuntimeError``).
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(buffer.getbuffer(), path)
