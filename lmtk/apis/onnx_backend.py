"""The onnxruntime backend of :class:`~lmtk.apis.Animator`: the exported graphs behind the network calls.

:class:`OnnxNetwork` has the four calls the Animator makes on a network (``encode_source``, ``motion``,
``path``, ``decode``; see :class:`~lmtk.apis.animator.TorchNetwork`) and runs them in onnxruntime
sessions on a folder written by :func:`lmtk.apis.onnx_export.export_onnx`. Everything else (reading and
resizing frames, batching, the start frame, relative transfer, smoothing, streaming) stays the Animator's.

A folder is checked when opened: its ``manifest.json`` must be lmtk's, every graph file must be there and
load, and, when the weights it was exported from are known, their fingerprint must match.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..cli import error_reason

__all__ = [
    "GRAPHS",
    "MANIFEST",
    "ExportFolderError",
    "OnnxNetwork",
    "check_fingerprint",
    "graph_file",
    "inference_session",
    "is_export_folder",
    "read_manifest",
]

GRAPHS = ("source", "motion", "path", "synthesis")
VARIANTS = ("float32", "int8")
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "lmtk-onnx-v1"
_EXPORT_HINT = "export it with tools/export_onnx.py CHECKPOINT --output DIR"


class ExportFolderError(ValueError):
    """An export folder that is missing, incomplete, corrupt, or from other weights."""


def graph_file(name: str, variant: str = "float32") -> str:
    """The file name of a graph: ``motion.onnx``, ``motion.int8.onnx``."""
    return f"{name}.onnx" if variant == "float32" else f"{name}.{variant}.onnx"


def is_export_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding an export manifest (it may still be incomplete)."""
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def inference_session(
    file: str | os.PathLike, threads: int | None = None, providers: Sequence[str] | None = None
):
    """An onnxruntime session on ``file``; an unreadable graph is an :class:`ExportFolderError`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers and the like are noise here
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    # every session has its own thread pool, and an idle pool's threads spin waiting for work: the motion
    # graph's pool then takes cores from the synthesis graph's (16 % of a 256 px frame on 2 cores)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(
            str(file), sess_options=options, providers=list(providers or ["CPUExecutionProvider"])
        )
    except Exception as error:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, ...)
        raise ExportFolderError(
            f"{file} is not a readable ONNX graph ({error_reason(error)}); {_EXPORT_HINT}"
        ) from None


def read_manifest(folder: str | os.PathLike, variant: str = "float32") -> dict:
    """The manifest of an export folder, checked: lmtk's format and every graph file of ``variant`` there."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportFolderError(f"export folder not found: {folder}; {_EXPORT_HINT}")
    file = folder / MANIFEST
    if not file.is_file():
        raise ExportFolderError(
            f"{folder} has no {MANIFEST}, so it is not an lmtk ONNX export; {_EXPORT_HINT}"
        )
    try:
        manifest = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExportFolderError(f"{file} is not valid JSON ({error}); {_EXPORT_HINT}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ExportFolderError(f"{file} is not an lmtk ONNX manifest ({MANIFEST_FORMAT}); {_EXPORT_HINT}")
    graphs = dict(manifest.get("graphs") or {})
    if variant != "float32":
        if variant not in manifest:
            raise ExportFolderError(
                f"{folder} has no {variant} graphs; export them with tools/export_onnx.py ... --{variant}"
            )
        graphs.update(manifest[variant])
    for name in GRAPHS:
        entry = graphs.get(name)
        if not isinstance(entry, dict) or not (folder / str(entry.get("file", ""))).is_file():
            raise ExportFolderError(f"{folder} lacks the {name} graph; {_EXPORT_HINT}")
    return manifest


def check_fingerprint(
    manifest: dict, fingerprint: str, folder: str | os.PathLike, what: str = "the checkpoint"
) -> None:
    """Refuse an export folder made from other weights than ``fingerprint``'s."""
    if manifest.get("weights_fingerprint") != fingerprint:
        raise ExportFolderError(
            f"{folder} was exported from other weights than {what} (weights fingerprint "
            f"{str(manifest.get('weights_fingerprint'))[:12]} != {fingerprint[:12]}); export again into "
            f"another folder, or open the folder alone"
        )


class OnnxNetwork:
    """The network calls of an export folder, on torch tensors in and out (``device`` placement).

    Args:
        folder: an export folder.
        variant: ``"float32"``, or ``"int8"`` for the quantized motion and synthesis graphs.
        device: where the returned tensors live; ``cuda`` runs the graphs in onnxruntime's CUDA provider.
        threads: onnxruntime's intra-op threads (default: its own choice, every core).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        variant: str = "float32",
        device: torch.device | str = "cpu",
        threads: int | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder, variant)
        self.variant = variant
        self.device = torch.device(device)
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            import onnxruntime as ort

            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError(
                    "onnxruntime here has no CUDA provider; install onnxruntime-gpu or use device 'cpu'"
                )
            providers.insert(0, "CUDAExecutionProvider")
        graphs = dict(self.manifest["graphs"])
        if variant != "float32":
            graphs.update(self.manifest[variant])
        self.sessions = {
            name: inference_session(self.folder / graphs[name]["file"], threads, providers) for name in GRAPHS
        }
        self.size = int(self.manifest["size"])
        self.dynamic_batch = bool(self.manifest.get("dynamic_batch", True))

    def _run(self, name: str, *inputs: torch.Tensor) -> list[torch.Tensor]:
        session = self.sessions[name]
        names = [i.name for i in session.get_inputs()]
        arrays = [t.detach().float().cpu().numpy() for t in inputs]
        if self.dynamic_batch or arrays[0].shape[0] == 1:
            outputs = session.run(None, dict(zip(names, arrays)))
        else:  # a fixed batch of 1: one frame per run
            rows = [
                session.run(None, {n: a[i : i + 1] for n, a in zip(names, arrays)})
                for i in range(len(arrays[0]))
            ]
            outputs = [np.concatenate(parts) for parts in zip(*rows)]
        return [torch.from_numpy(o).to(self.device) for o in outputs]

    def encode_source(self, image: torch.Tensor):
        """Code, feature pyramid, magnitudes and path of source images ``(B, 3, S, S)``."""
        code, magnitudes, path, *features = self._run("source", image)
        return code, features, magnitudes, path

    def motion(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Magnitudes ``(B, M)`` and path ``(B, D)`` of driving frames ``(B, 3, S, S)``."""
        magnitudes, path = self._run("motion", frames)
        return magnitudes, path

    def path(self, magnitudes: torch.Tensor) -> torch.Tensor:
        return self._run("path", magnitudes)[0]

    def decode(self, latent: torch.Tensor, features: Sequence[torch.Tensor]) -> torch.Tensor:
        features = [f.expand(latent.shape[0], *f.shape[1:]) for f in features]
        return self._run("synthesis", latent, *features)[0]


def open_network(
    owner: object,
    model_or_path,
    config=None,
    export_dir: str | os.PathLike | None = None,
    int8: bool = False,
    threads: int | None = None,
    trust: bool = False,
) -> tuple[OnnxNetwork, object | None]:
    """The :class:`OnnxNetwork` of an export folder, or of a model or checkpoint exported for it, and
    that PyTorch model (None for an export folder: it holds no direction names, which edits need).

    A model or checkpoint is exported into ``export_dir`` unless that folder holds an export already,
    which must then come from the same weights; without ``export_dir`` into a temporary folder removed
    when ``owner`` (the Animator) is garbage collected.
    """
    from torch import nn

    variant = "int8" if int8 else "float32"
    device = getattr(owner, "device", "cpu")
    if not isinstance(model_or_path, nn.Module):
        if not Path(model_or_path).exists():
            raise FileNotFoundError(
                f"{model_or_path} not found: give an export folder ({_EXPORT_HINT}) or a checkpoint"
            )
        if is_export_folder(model_or_path):
            if export_dir is not None:
                raise ValueError(f"{model_or_path} is an export folder already; leave export_dir out")
            return OnnxNetwork(model_or_path, variant, device, threads), None
    from .loading import load_model
    from .onnx_export import export_onnx, weights_fingerprint

    if isinstance(model_or_path, nn.Module):
        model = model_or_path
    else:
        model = load_model(model_or_path, config=config, device="cpu", trust=trust)
    if export_dir is not None and Path(export_dir).is_dir() and any(Path(export_dir).iterdir()):
        check_fingerprint(read_manifest(export_dir, variant), weights_fingerprint(model.net), export_dir)
        return OnnxNetwork(export_dir, variant, device, threads), model
    if export_dir is None:
        import shutil
        import tempfile
        import weakref

        temporary = tempfile.mkdtemp(prefix="lmtk-onnx-")
        weakref.finalize(owner, shutil.rmtree, temporary, ignore_errors=True)
        export_dir = Path(temporary) / "export"
    export_onnx(model, export_dir, int8=int8)
    return OnnxNetwork(export_dir, variant, device, threads), model
