"""Export formats against torch itself: TorchScript and ONNX give the built model's outputs."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from layerlab import build
from layerlab.export import export_graph, safe_name
from layerlab.graph import GraphInvalidError

GRAPH = {
    "format": "layerlab.graph/1",
    "name": "branchy net",
    "nodes": [
        {"id": "x", "op": "Input", "params": {"shape": [3, 8, 8]}},
        {"id": "a", "op": "Conv2d", "params": {"out_channels": 4, "padding": "same"}},
        {"id": "b", "op": "Conv2d", "params": {"out_channels": 4, "kernel_size": 1}},
        {"id": "cat", "op": "Concat"},
        {"id": "bn", "op": "BatchNorm2d"},
        {"id": "pool", "op": "AdaptiveAvgPool2d"},
        {"id": "flat", "op": "Flatten"},
        {"id": "fc", "op": "Linear", "params": {"out_features": 5}},
        {"id": "y", "op": "Output"},
    ],
    "edges": [
        {"source": "x", "target": "a"}, {"source": "x", "target": "b"},
        {"source": "a", "target": "cat"}, {"source": "b", "target": "cat"},
        {"source": "cat", "target": "bn"}, {"source": "bn", "target": "pool"},
        {"source": "pool", "target": "flat"}, {"source": "flat", "target": "fc"}, {"source": "fc", "target": "y"},
    ],
}


def reference(x: torch.Tensor) -> torch.Tensor:
    model = build(GRAPH, seed=0).eval()
    with torch.no_grad():
        return model(x)


def test_torchscript_matches_the_built_model() -> None:
    out = export_graph(GRAPH, "torchscript")
    assert out.filename == "branchy_net.pt"
    scripted = torch.jit.load(io.BytesIO(out.content))
    x = torch.randn(3, 3, 8, 8)
    torch.testing.assert_close(scripted(x), reference(x))


def test_onnx_matches_the_built_model() -> None:
    ort = pytest.importorskip("onnxruntime")
    out = export_graph(GRAPH, "onnx")
    assert out.filename == "branchy_net.onnx"
    session = ort.InferenceSession(out.content)
    x = torch.randn(1, 3, 8, 8)
    (got,) = session.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(got, reference(x).numpy(), rtol=1e-4, atol=1e-5)


def test_json_round_trips_and_python_compiles() -> None:
    assert json.loads(export_graph(GRAPH, "json").content)["nodes"][3]["id"] == "cat"
    source = export_graph(GRAPH, "python").content.decode()
    namespace: dict = {}
    exec(compile(source, "branchy_net.py", "exec"), namespace)
    assert namespace["build_model"]()(torch.randn(2, 3, 8, 8)).shape == (2, 5)


def test_an_invalid_graph_names_its_node() -> None:
    broken = json.loads(json.dumps(GRAPH))
    broken["nodes"] = [n for n in broken["nodes"] if n["id"] != "flat"]
    broken["edges"] = [e for e in broken["edges"] if "flat" not in (e["source"], e["target"])]
    broken["edges"].append({"source": "pool", "target": "fc"})
    with pytest.raises(GraphInvalidError) as info:
        export_graph(broken, "torchscript")
    assert info.value.errors[0].node == "fc"


def test_file_names_never_carry_a_path() -> None:
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("...") == "model"
