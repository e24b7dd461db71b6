"""ONNX export: every graph computes what the PyTorch network computes, and the manifest describes it."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from tiny_models import SIZE, TINY_LIA

from lmtk.apis import onnx_export  # noqa: E402
from lmtk.apis.numerics import relative_error, synthetic_images  # noqa: E402
from lmtk.apis.onnx_backend import GRAPHS, MANIFEST, OnnxNetwork, inference_session  # noqa: E402
from lmtk.apis.onnx_export import TOLERANCE, export_onnx, weights_fingerprint  # noqa: E402
from lmtk.registry import build  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx") / "export"
    errors = export_onnx(model, folder, int8=True)
    return folder, errors


def _run(folder, name, *inputs, variant="float32"):
    manifest = json.loads((folder / MANIFEST).read_text())
    entry = (manifest[variant] if variant != "float32" else manifest["graphs"])[name]
    session = inference_session(folder / entry["file"])
    names = [i.name for i in session.get_inputs()]
    return [torch.from_numpy(o) for o in session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})]


def test_each_graph_matches_pytorch(model, exported):
    folder, errors = exported
    assert set(errors) >= set(GRAPHS)
    assert all(errors[name] < TOLERANCE for name in GRAPHS), errors
    net = model.net
    # a batch of 3, which the export never saw (it checks batch 2): the batch axis is dynamic
    image, frames = synthetic_images(3, SIZE, seed=10), synthetic_images(3, SIZE, seed=11)
    with torch.no_grad():
        code, features = net.encode(image)
        magnitudes = net.magnitudes(code)
        source_path = net.path(magnitudes)
        frame_magnitudes = net.magnitudes(net.encode_code(frames))
        frame_path = net.path(frame_magnitudes)
        decoded = net.decode(code + frame_path, features)
    got = _run(folder, "source", image)
    for ours, theirs in zip(got, [code, magnitudes, source_path, *features]):
        assert relative_error(ours, theirs) < TOLERANCE
    got_magnitudes, got_path = _run(folder, "motion", frames)
    assert relative_error(got_magnitudes, frame_magnitudes) < TOLERANCE
    assert relative_error(got_path, frame_path) < TOLERANCE
    assert relative_error(_run(folder, "path", frame_magnitudes)[0], frame_path) < TOLERANCE
    (image_out,) = _run(folder, "synthesis", code + frame_path, *features)
    assert image_out.shape == (3, 3, SIZE, SIZE)
    assert relative_error(image_out, decoded) < TOLERANCE


def test_manifest_describes_the_export(model, exported):
    folder, errors = exported
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["weights_fingerprint"] == weights_fingerprint(model.net)
    assert manifest["opset"] == 18 and manifest["size"] == SIZE and manifest["num_magnitudes"] == 5
    synthesis = manifest["graphs"]["synthesis"]
    assert [i["name"] for i in synthesis["inputs"]] == ["latent", "feature0", "feature1", "feature2"]
    assert synthesis["outputs"][0]["shape"] == ["batch", 3, SIZE, SIZE]
    assert manifest["graphs"]["motion"]["relative_error"] == errors["motion"]
    # nothing but the export's files: the staging folder is gone
    assert sorted(p.name for p in folder.parent.iterdir()) == ["export"]


def test_fingerprint_sees_one_changed_weight(model):
    changed = build(TINY_LIA).eval()
    changed.load_state_dict(model.state_dict())
    assert weights_fingerprint(changed.net) == weights_fingerprint(model.net)
    with torch.no_grad():
        changed.net.motion_basis.weight[0, 0] += 1e-6
    assert weights_fingerprint(changed.net) != weights_fingerprint(model.net)


def test_int8_graphs_run_and_report_their_error(exported):
    folder, errors = exported
    network = OnnxNetwork(folder, variant="int8")
    frames = synthetic_images(2, SIZE, seed=12)
    magnitudes, path = network.motion(frames)
    assert magnitudes.shape == (2, 5) and path.shape == (2, 32)
    assert np.isfinite(errors["motion_int8"]) and np.isfinite(errors["synthesis_int8"])
    # int8 is not float32: the graphs did change (a quantizer that did nothing would give 0)
    assert errors["synthesis_int8"] > 1e-4


def _dense_transposed_convolutions(file) -> int:
    """The transposed convolutions of a graph but the depthwise FIR upsampling of the RGB skips."""
    import onnx

    def group(node):
        return next((a.i for a in node.attribute if a.name == "group"), 1)

    return sum(n.op_type == "ConvTranspose" and group(n) == 1 for n in onnx.load(str(file)).graph.node)


def test_int8_synthesis_has_no_transposed_convolution(exported):
    """onnxruntime runs a quantized transposed convolution in float32: the int8 synthesis graph comes
    from the sub-pixel form (ordinary convolutions and a pixel shuffle), while the float32 graph keeps
    the transposed convolutions (faster in float32); the form's file does not stay in the folder."""
    folder, _ = exported
    assert _dense_transposed_convolutions(folder / "synthesis.onnx") > 0
    assert _dense_transposed_convolutions(folder / "synthesis.int8.onnx") == 0
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_int8_motion_graph_quantizes_its_activations(exported):
    """The encoder's bias, activation and gain run in int8 too (in float they were a third of its time);
    the graph still loads."""
    import onnx

    folder, _ = exported
    session = inference_session(folder / "motion.int8.onnx")
    assert session.get_inputs()[0].name == "frames"
    graph = onnx.load(str(folder / "motion.int8.onnx")).graph
    quantized_inputs = {i for n in graph.node if n.op_type == "DequantizeLinear" for i in n.output}
    activations = [n for n in graph.node if n.op_type == "LeakyRelu"]
    assert activations and all(n.input[0] in quantized_inputs for n in activations)


def _value_names(file):
    import onnx

    graph = onnx.load(str(file)).graph
    return [i.name for i in graph.initializer] + [o for node in graph.node for o in node.output]


def test_int8_graphs_name_every_value_once(exported):
    folder, _ = exported
    for name in ("motion", "synthesis"):
        names = _value_names(folder / f"{name}.int8.onnx")
        assert len(names) == len(set(names)), name


def test_int8_shared_bias_whose_copy_name_is_taken_still_loads(tmp_path):
    """Two Gemms share the bias ``b_1``; ``b_17`` is an initializer and ``b_18`` a node's output. The
    quantizer names its per-node copy of a shared bias ``b_1`` + (largest initializer suffix + 1) = ``b_18``,
    the name clash of the 256 px generator (``mul_1`` -> ``mul_180``, a duplicated name there; a Gemm
    taking an activation as its bias here). The export copies shared biases itself first."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {n: rng.standard_normal((4, 4)).astype(np.float32) for n in ("w_a", "w_b", "b_17")}
    initializers = [numpy_helper.from_array(a, n) for n, a in weights.items()]
    initializers.append(numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b_1"))
    nodes = [
        helper.make_node("MatMul", ["x", "b_17"], ["h"], name="n0"),
        helper.make_node("Relu", ["h"], ["b_18"], name="n1"),
        helper.make_node("Gemm", ["b_18", "w_a", "b_1"], ["y_a"], name="n2"),
        helper.make_node("Gemm", ["b_18", "w_b", "b_1"], ["y_b"], name="n3"),
        helper.make_node("Add", ["y_a", "y_b"], ["y"], name="n4"),
    ]
    graph = helper.make_graph(
        nodes,
        "shared_bias",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializers,
    )
    source, target = tmp_path / "g.onnx", tmp_path / "g.int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(source))
    samples = [{"x": rng.standard_normal((1, 4)).astype(np.float32)} for _ in range(8)]
    onnx_export._quantize_graph(source, target, samples, ("MatMul", "Gemm"))
    names = _value_names(target)
    assert len(names) == len(set(names))
    (got,) = inference_session(target).run(None, samples[0])
    (expected,) = inference_session(source).run(None, samples[0])
    assert relative_error(torch.from_numpy(got), torch.from_numpy(expected)) < 0.1


def test_failed_check_leaves_nothing_behind(model, tmp_path, monkeypatch):
    # a graph far from PyTorch, in float32 and against float64 alike
    far = {"float64_noise_floor": 1e-6, "relative_error_vs_float64": 0.5}
    monkeypatch.setattr(onnx_export, "_verify", lambda *args: (0.5, dict(far)))
    with pytest.raises(ValueError, match="the exported source graph differs from PyTorch by 0.5"):
        export_onnx(model, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_opset_below_grid_sample_is_refused(model, tmp_path):
    with pytest.raises(ValueError, match="opset must be 16 or more"):
        export_onnx(model, tmp_path / "out", opset=13)
