"""Every examples/*.json: valid, costed as torch counts, and the same model through every door
(build, generated code, and back in through from_module)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import layerlab
from helpers import n_params, sample_input
from layerlab import Graph
from layerlab.compile import build

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json"))
EXPECTED = {"mlp", "lenet5", "vgg_mini", "resnet_mini", "concat_branch", "conv1d", "digits_cnn", "mnist_cnn", "mnist_resnet",
            "char_gru", "tokens_transformer", "seasonal_forecaster"}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def input_of(data: dict[str, Any]) -> tuple[list[int], str]:
    inp = next(n for n in data["nodes"] if n["op"] == "Input")
    return inp["params"]["shape"], inp["params"].get("dtype", "float32")


def test_the_examples_directory_holds_the_examples() -> None:
    assert EXAMPLES, f"no examples in {EXAMPLES_DIR}"
    assert {p.stem for p in EXAMPLES} >= EXPECTED


@pytest.fixture(params=EXAMPLES, ids=lambda p: p.stem)
def example(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_example_is_valid(example: dict[str, Any]) -> None:
    report = layerlab.infer(example)
    assert report.valid, report.errors
    assert example["format"] == layerlab.FORMAT
    assert example["name"] and all(n["op"] != "Input" or n.get("label") for n in example["nodes"])
    assert example.get("description"), "the template gallery shows each example's description"


def test_report_totals_match_the_built_module(example: dict[str, Any]) -> None:
    report = layerlab.infer(example)
    model = build(example)
    assert report.totals.params == n_params(model)
    assert report.totals.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    shape, dtype = input_of(example)
    with torch.no_grad():
        out = model.eval()(sample_input(shape, dtype=dtype))
    assert list(out.shape[1:]) == report.output_shape


def test_example_is_laid_out_left_to_right(example: dict[str, Any]) -> None:
    nodes = {n["id"]: n for n in example["nodes"]}
    assert all("position" in n for n in nodes.values())
    for e in example["edges"]:
        src, dst = nodes[e["source"]], nodes[e["target"]]
        if src.get("parent") == dst.get("parent"):  # siblings share a coordinate frame
            assert src["position"]["x"] < dst["position"]["x"], e


def test_generated_code_builds_the_same_model(example: dict[str, Any]) -> None:
    model = build(example).eval()
    namespace: dict[str, Any] = {"__name__": "example"}
    exec(compile(layerlab.to_python(example), f"<{example['name']}>", "exec"), namespace)
    generated = namespace["build_model"]().eval()
    generated.load_state_dict(model.state_dict(), strict=True)
    shape, dtype = input_of(example)
    x = sample_input(shape, dtype=dtype)
    with torch.no_grad():
        torch.testing.assert_close(generated(x), model(x))


def test_example_survives_from_module(example: dict[str, Any]) -> None:
    model = build(example, seed=7).eval()
    shape, dtype = input_of(example)
    graph = layerlab.from_module(model, shape, input_dtype=dtype)
    assert layerlab.infer(graph).totals.params == layerlab.infer(example).totals.params
    again = build(graph).eval()
    again.load_state_dict(model.state_dict(), strict=True)
    x = sample_input(shape, dtype=dtype)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))


def structure(graph: Graph | dict[str, Any]) -> dict[str, Any]:
    """A graph as its module tree: every node by its module path (merges by what they join), with
    its op, params (inferred sizes left out) and frozen flag; a residual's 'auto' shortcut as what
    it resolves to. Ids, labels and positions are the editor's and do not count."""
    g = graph if isinstance(graph, Graph) else Graph.model_validate(graph)
    report = layerlab.infer(g)
    by_id = {n.id: n for n in g.nodes}

    def path(n: Any) -> str:
        parts = []
        while n is not None:
            parts.append(n.module_name)
            n = by_id.get(n.parent) if n.parent else None
        return ".".join(reversed(parts))

    out: dict[str, Any] = {}
    for n in g.nodes:
        params = n.params.model_dump(exclude=set(layerlab.ops.get_op(n.op).input_size_args))
        if n.op == "Block" and params["residual"] and params["shortcut"] == "auto":
            r = report.node(n.id)
            params["shortcut"] = "identity" if r.input_shapes[0] == r.output_shape else "projection"
        key = n.op if n.op in ("Input", "Output") else path(n)
        if layerlab.ops.get_op(n.op).merge is not None:
            key = f"{path(by_id[n.parent]) if n.parent else ''}:{n.op}{report.node(n.id).input_shapes}"
        out[key] = (n.op, params, n.frozen)
    return out


def test_export_then_import_gives_the_same_graph(example: dict[str, Any]) -> None:
    """Built, then imported: the same nodes, blocks (repeats and residuals included) and params."""
    model = build(example, seed=7).eval()
    shape, dtype = input_of(example)
    graph = layerlab.from_module(model, shape, input_dtype=dtype, name=example.get("name"))
    assert structure(graph) == structure(example)
    assert repr(build(graph)) == repr(model)
