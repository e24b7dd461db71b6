"""Read and write checkpoints: lmtk's own (mmengine format), safetensors and the published LIA format.

Reading never runs code from the file: PyTorch files are unpickled weights-only, allowing only what
lmtk's, mmengine's and the published checkpoints hold (:func:`load_checkpoint_file`), unless the user
vouches for the file (``trust``). Writing is atomic, with the umask's mode, and fails as one line.

How a published checkpoint's keys map onto lmtk's module names lives beside each model:
:mod:`lmtk.models.lia_keys` (LIA's ``{'gen': ..., 'dis': ...}``) and :mod:`lmtk.models.liax_keys`.
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
    "hub_checkpoint_path",
    "is_hub_reference",
    "load_checkpoint_file",
    "safe_unpickling",
    "stores_config",
    "to_safetensors",
    "unreadable_checkpoint",
]


#: what a checkpoint file is called (a PyTorch one, a safetensors one); other outputs are refused
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt")
SAFETENSORS_SUFFIX = ".safetensors"
CHECKPOINT_SUFFIXES = (*TORCH_SUFFIXES, SAFETENSORS_SUFFIX)

#: how a user vouches for a file that needs more than weights: named in every refusal
TRUST_HINT = "--trust-checkpoint (trust=True in Python) if you trust where the file came from"


# LIA's published key rules moved to lmtk.models.lia_keys; their old names here keep working
_MOVED_TO_LIA_KEYS = ("from_published", "is_published", "published_model_config", "to_published")


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_LIA_KEYS:
        from .models import lia_keys

        return getattr(lia_keys, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says which key."""


class UntrustedCheckpointError(CheckpointError):
    """A checkpoint whose unpickling needs a type beyond weights and training state: it could run code."""


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (full disk, read-only folder, ...); the message says where."""


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
