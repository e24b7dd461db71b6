"""Export an LIA model to ONNX the way :class:`~lmtk.apis.Animator` calls it, checked against PyTorch.

The animation is split into the graphs the Animator runs (``GRAPHS``):

- ``source``: image ``(B, 3, S, S)`` -> code ``z_{s->r}``, magnitudes ``A_{r->s}``, path ``w_{r->s}`` and
  the feature pyramid (``feature0`` coarse ... fine); run once per source;
- ``motion``: driving frames ``(B, 3, S, S)`` -> magnitudes and path (relative mode's start frame too);
- ``path``: magnitudes ``(B, M)`` -> path ``(B, D)`` (a tiny graph: smoothed magnitudes need their path);
- ``synthesis``: latent ``(B, D)`` and the features -> frames ``(B, 3, S, S)``.

Right after export each graph runs in onnxruntime's CPU provider on random inputs and is compared with
PyTorch (relative error, float32); over ``tolerance`` (1e-4) the export fails, unless a float64 PyTorch run
shows that PyTorch's own float32 run is as far off (an untrained network amplifies rounding): the
graph's error against float64 must then stay within twice that noise floor. A ``manifest.json`` beside the
files holds the model config, the opset, every graph's input and output names and shapes, the errors
measured, the lmtk version and a fingerprint of the weights, so that a folder exported from other weights
is refused (:func:`lmtk.apis.onnx_backend.check_manifest`).

Example:
    >>> export_onnx("lia_vox.pt", "lia_vox_onnx")  # doctest: +SKIP
    {'source': 1.9e-07, 'motion': 2.1e-07, 'path': 0.0, 'synthesis': 3.4e-06}
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..functional.image_range import uint8_to_float
from ..layers import set_blur
from ..models.lia_generator import transfer_latent
from ..version import __version__
from .loading import load_model
from .numerics import relative_error, synthetic_images
from .onnx_backend import (
    MANIFEST,
    MANIFEST_FORMAT,
    graph_file,
    inference_session,
)

__all__ = ["DEFAULT_OPSET", "TOLERANCE", "export_onnx", "quantize_int8", "weights_fingerprint"]

DEFAULT_OPSET = 18
TOLERANCE = 1e-4  # relative error of each float32 graph against PyTorch
CHECK_BATCH = 2  # the checks run a batch other than 1, so a batch axis fixed by mistake shows
# what each int8 graph quantizes. The encoder's bias, activation, gain and residual sums too: in float
# they were a third of the int8 motion graph's time (256 px), and int8 left the quickstart model's quality
# as it was (27.9 dB, recon L1 0.0310). The synthesis graph's elementwise ops multiply by the style, and
# int8 there cost quality (26.8 dB, 0.0331): they stay float32.
QUANTIZED_OP_TYPES = {
    "motion": ("Conv", "MatMul", "Gemm", "LeakyRelu", "Add", "Mul"),
    "synthesis": ("Conv", "MatMul", "Gemm"),
}
# the synthesis graph is quantized from an export whose upsampling runs as sub-pixel convolutions:
# onnxruntime has no int8 transposed convolution and runs it in float32 (40 % of the int8 synthesis
# graph's time at 256 px)
QUANTIZED_FORM_BLUR = "subpixel"


def weights_fingerprint(net: nn.Module) -> str:
    """SHA-256 over the network's parameter and buffer names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


class _Path(nn.Module):
    """The motion basis with its directions computed once: ``w = A @ D^T``.

    A Gram-Schmidt basis orthonormalises its weight with a QR decomposition that ONNX has no operator
    for; at inference the directions are constants. A basis without directions (``DirectPath``) is
    exported as it is. The comparison after export catches a basis whose path is not ``A @ D^T``.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        with torch.no_grad():
            directions = net.directions()
        self.register_buffer("directions", None if directions is None else directions.float().clone())

    def forward(self, magnitudes: torch.Tensor) -> torch.Tensor:
        if self.directions is None:
            return self.net.path(magnitudes)
        return magnitudes @ self.directions.t()


class _SourceGraph(nn.Module):
    def __init__(self, net: nn.Module, path: _Path) -> None:
        super().__init__()
        self.net, self.path = net, path

    def forward(self, image: torch.Tensor):
        code, features = self.net.encode(image)
        magnitudes = self.net.magnitudes(code)
        return (code, magnitudes, self.path(magnitudes), *features)


class _MotionGraph(nn.Module):
    def __init__(self, net: nn.Module, path: _Path) -> None:
        super().__init__()
        self.net, self.path = net, path

    def forward(self, frames: torch.Tensor):
        magnitudes = self.net.magnitudes(self.net.encode_code(frames))
        return magnitudes, self.path(magnitudes)


class _SynthesisGraph(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, latent: torch.Tensor, *features: torch.Tensor):
        return self.net.decode(latent, list(features))


def _graphs(net: nn.Module, check_inputs: dict) -> dict:
    """Each graph's module, example inputs, input names and output names."""
    path = _Path(net)
    count = len(check_inputs["features"])
    feature_names = [f"feature{i}" for i in range(count)]
    return {
        "source": (
            _SourceGraph(net, path),
            (check_inputs["image"],),
            ["image"],
            ["code", "magnitudes", "path", *feature_names],
        ),
        "motion": (_MotionGraph(net, path), (check_inputs["frames"],), ["frames"], ["magnitudes", "path"]),
        "path": (path, (check_inputs["magnitudes"],), ["magnitudes"], ["path"]),
        "synthesis": (
            _SynthesisGraph(net),
            (check_inputs["latent"], *check_inputs["features"]),
            ["latent", *feature_names],
            ["image"],
        ),
    }


def _check_inputs(net: nn.Module, batch: int) -> dict:
    """Image-like inputs and the latents and features they lead to (what the synthesis really sees)."""
    image = synthetic_images(batch, net.size, seed=1)
    frames = synthetic_images(batch, net.size, seed=2)
    with torch.no_grad():
        code, features = net.encode(image)
        magnitudes, path = net.motion(frames)
        latent = transfer_latent(code, path)
    return dict(image=image, frames=frames, magnitudes=magnitudes, latent=latent, features=list(features))


def _export_graph(module, inputs, input_names, output_names, file: Path, opset: int, dynamic_batch: bool):
    batch = torch.export.Dim("batch", min=1) if dynamic_batch else None
    dynamic_shapes = None
    if dynamic_batch:  # shaped like forward's arguments: the synthesis takes its features as *args
        axes = [{0: batch} for _ in inputs]
        dynamic_shapes = (axes[0], tuple(axes[1:])) if isinstance(module, _SynthesisGraph) else tuple(axes)
    # torch.export's progress lines and the shape checks' warnings are noise here
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            inputs,
            input_names=input_names,
            output_names=output_names,
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            dynamo=True,
            optimize=True,
            verbose=False,
        )
        program.save(str(file))


def _io_spec(session) -> dict:
    def spec(values):
        return [{"name": v.name, "shape": list(v.shape), "dtype": v.type} for v in values]

    return {"inputs": spec(session.get_inputs()), "outputs": spec(session.get_outputs())}


def _outputs(module: nn.Module, inputs: tuple) -> tuple:
    with torch.no_grad():
        outputs = module(*inputs)
    return tuple(outputs) if isinstance(outputs, tuple | list) else (outputs,)


def _verify(
    file: Path, module: nn.Module, inputs: tuple, input_names: list[str], tolerance: float = TOLERANCE
) -> tuple[float, dict]:
    """The largest relative error of the graph's outputs against PyTorch, and its input/output spec.

    When that error is over ``tolerance``, the graph's float64 PyTorch run decides: an untrained,
    chaotic network amplifies float32 rounding beyond it in PyTorch's own float32 run too, and the
    export is then held to that noise floor (its error against float64 at most twice PyTorch's)."""
    session = inference_session(file)
    outputs = session.run(None, {n: t.numpy() for n, t in zip(input_names, inputs)})
    expected = _outputs(module, inputs)
    spec = _io_spec(session)
    error = max(_error(o, e) for o, e in zip(outputs, expected))
    if error > tolerance:
        exact = _outputs(copy.deepcopy(module).double(), tuple(t.double() for t in inputs))
        floor = max(_error(e.numpy(), x) for e, x in zip(expected, exact))
        spec["float64_noise_floor"] = floor
        spec["relative_error_vs_float64"] = max(_error(o, x) for o, x in zip(outputs, exact))
    return error, spec


def _error(ours: np.ndarray, expected: torch.Tensor) -> float:
    """Relative error; for an all-zero expected output (an untrained generator's), the largest value."""
    ours = torch.from_numpy(ours)
    return relative_error(ours, expected) if expected.norm() > 0 else float(ours.abs().max())


def export_onnx(
    model_or_path: nn.Module | str | os.PathLike,
    output: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    config=None,
    tolerance: float = TOLERANCE,
    int8: bool = False,
    calibration_frames: np.ndarray | None = None,
) -> dict[str, float]:
    """Export the source, motion, path and synthesis graphs of an LIA model to ``output``.

    Args:
        model_or_path: an LIA model, or anything :func:`lmtk.load_model` reads.
        output: the folder to write (created; an existing export there is replaced). The files are
            written to a temporary folder beside it first, so a failed export leaves nothing behind.
        opset: the ONNX opset (``grid_sample`` needs 16 or more).
        dynamic_batch: give every graph a dynamic batch axis; otherwise every graph takes batch 1 (what
            a streaming caller runs; the backend then runs a larger batch one frame at a time).
        config: as for :func:`lmtk.load_model`.
        tolerance: the largest relative error accepted for a float32 graph against PyTorch.
        int8: also write int8 versions of the motion and synthesis graphs (:func:`quantize_int8`).
        calibration_frames: ``(N, S, S, 3)`` uint8 frames for the int8 calibration (default: synthetic).

    Returns:
        Each graph's relative error against PyTorch (int8 graphs: against the float32 model).

    Raises:
        ValueError: an opset below 16, or a graph that does not match PyTorch within ``tolerance``.
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 16:
        raise ValueError(f"opset must be 16 or more (grid_sample needs it), got {opset!r}")
    if isinstance(model_or_path, nn.Module):
        model = model_or_path
        net = copy.deepcopy(model.net).float().cpu().eval()
    else:
        model = load_model(model_or_path, config=config, device="cpu")
        net = model.net.float().eval()
    net.requires_grad_(False)
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"cannot export to {output}: it is a file, not a folder")
    output.parent.mkdir(parents=True, exist_ok=True)
    batch = CHECK_BATCH if dynamic_batch else 1
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        inputs = _check_inputs(net, batch)
        errors, graphs = {}, {}
        for name, (module, args, input_names, output_names) in _graphs(net, inputs).items():
            file = staging / graph_file(name)
            _export_graph(module, args, input_names, output_names, file, opset, dynamic_batch)
            error, spec = _verify(file, module, args, input_names, tolerance)
            within_noise = spec.get("relative_error_vs_float64", math.inf) <= 2 * spec.get(
                "float64_noise_floor", 0
            )
            if not (error <= tolerance or within_noise):
                raise ValueError(
                    f"the exported {name} graph differs from PyTorch by {error:.3g} (relative), more than "
                    f"{tolerance:g}; export with another --opset or report the model's layers that differ"
                )
            errors[name] = error
            graphs[name] = {"file": file.name, **spec, "relative_error": error}
        manifest = {
            "format": MANIFEST_FORMAT,
            "lmtk_version": __version__,
            "opset": opset,
            "dynamic_batch": dynamic_batch,
            "size": net.size,
            "latent_dim": net.latent_dim,
            "num_magnitudes": int(inputs["magnitudes"].shape[1]),
            "feature_shapes": [list(f.shape[1:]) for f in inputs["features"]],
            "model_config": getattr(model, "config", None),
            "weights_fingerprint": weights_fingerprint(net),
            "tolerance": tolerance,
            "graphs": graphs,
        }
        if int8:
            manifest["int8"] = quantize_int8(staging, net, graphs, calibration_frames, opset, dynamic_batch)
            errors.update({f"{k}_int8": v["relative_error"] for k, v in manifest["int8"].items()})
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return errors


def quantize_int8(
    folder: Path,
    net: nn.Module,
    graphs: dict,
    calibration_frames: np.ndarray | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
) -> dict:
    """Static int8 (QDQ, per-channel weights) versions of the per-frame graphs, calibrated on frames.

    The motion graph is calibrated on the frames themselves and the synthesis graph on the latents and
    source features those frames lead to (each frame serving in turn as source and as driving frame).
    The motion graph is quantized from its float32 file in ``folder``; the synthesis graph from one
    exported again with its upsampling as sub-pixel convolutions (``opset``, ``dynamic_batch``), the same
    function without transposed convolutions (:data:`QUANTIZED_FORM_BLUR`).
    Returns each quantized graph's file, its relative error against the float32 PyTorch model on the
    calibration inputs, and its input/output spec.
    """
    if calibration_frames is None:
        frames = synthetic_images(16, net.size, seed=3)
    else:
        frames = uint8_to_float(
            torch.from_numpy(np.ascontiguousarray(calibration_frames)).permute(0, 3, 1, 2)
        )
    with torch.no_grad():
        code, features = net.encode(frames)
        path = net.motion(frames)[1]
        latent = transfer_latent(code, path.roll(1, 0))  # another frame's motion on each source
    feature_names = [f"feature{i}" for i in range(len(features))]
    samples = {
        "motion": [{"frames": frames[i : i + 1].numpy()} for i in range(len(frames))],
        "synthesis": [
            {
                "latent": latent[i : i + 1].numpy(),
                **{n: f[i : i + 1].numpy() for n, f in zip(feature_names, features)},
            }
            for i in range(len(frames))
        ],
    }

    quantized_form = folder / f".synthesis_{QUANTIZED_FORM_BLUR}.onnx"
    form = copy.deepcopy(net)
    set_blur(form, QUANTIZED_FORM_BLUR)
    example = _check_inputs(form, CHECK_BATCH if dynamic_batch else 1)
    module, inputs, input_names, output_names = _graphs(form, example)["synthesis"]
    _export_graph(module, inputs, input_names, output_names, quantized_form, opset, dynamic_batch)
    sources = {"motion": folder / graphs["motion"]["file"], "synthesis": quantized_form}

    result = {}
    for name in ("motion", "synthesis"):
        target = folder / graph_file(name, "int8")
        _quantize_graph(sources[name], target, samples[name], QUANTIZED_OP_TYPES[name])
        session = inference_session(target)
        batch = {k: np.concatenate([s[k] for s in samples[name]]) for k in samples[name][0]}
        got = session.run(None, batch)[-1]  # the path, or the image
        with torch.no_grad():
            expected = path if name == "motion" else net.decode(latent, features)
        result[name] = {
            "file": target.name,
            **_io_spec(session),
            "relative_error": _error(got, expected),
        }
    quantized_form.unlink()
    return result


def _quantize_graph(source: Path, target: Path, samples: list[dict], op_types: tuple[str, ...]) -> None:
    """Write the static int8 (QDQ, per-channel weights) version of ``source``, calibrated on ``samples``
    (each a dict of a batch-1 input per input name), quantizing the nodes of ``op_types``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self, items):
            self.items = iter(items)

        def get_next(self):
            return next(self.items, None)

    prepared = target.with_name(f".{target.stem}_prepared.onnx")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            _unshare_biases(prepared, op_types)
            quantize_static(
                str(prepared),
                str(target),
                Reader(samples),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                op_types_to_quantize=list(op_types),
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
    finally:
        prepared.unlink(missing_ok=True)


def _unshare_biases(file: Path, op_types: tuple[str, ...]) -> None:
    """Give each quantized node a bias initializer of its own, under a name no value of the graph has.

    The exporter stores equal constants once, so several Gemms may share one bias (``mul_1``). A bias'
    int8 scale depends on its node's input and weight scales, so onnxruntime's quantizer copies a shared
    bias per node, naming the copy by appending a number to the name (``mul_1`` + ``80``) while checking
    only the initializers' names: ``mul_180`` may already be a node's output, and onnxruntime then refuses
    the quantized graph (a duplicated tensor name; the 256 px generator has one). Copying here, with names
    checked against every value, leaves the quantizer nothing to copy.
    """
    import onnx

    model = onnx.load(str(file))
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    taken = set(initializers)
    taken.update(value.name for value in (*graph.input, *graph.output, *graph.value_info))
    for node in graph.node:
        taken.update(node.input)
        taken.update(node.output)
    first_use = set()
    copies = []
    for index, node in enumerate(graph.node):
        if node.op_type not in op_types or len(node.input) < 3 or node.input[2] not in initializers:
            continue
        bias = node.input[2]
        if bias not in first_use:
            first_use.add(bias)
            continue
        name = f"{bias}_bias_of_{node.name or index}"
        while name in taken:
            name += "_"
        taken.add(name)
        copy_ = onnx.TensorProto()
        copy_.CopyFrom(initializers[bias])
        copy_.name = name
        copies.append(copy_)
        node.input[2] = name
    if copies:
        graph.initializer.extend(copies)
        onnx.save(model, str(file))
