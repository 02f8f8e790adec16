"""Code export: the generated file is the model build() makes, weight for weight."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import layerlab
from helpers import chain, graph, node, sample_input
from test_compile import residual, resnet_like
from test_ops import CASES, Case

GOLDEN = Path(__file__).parent / "golden"


def run_generated(source: str) -> nn.Module:
    namespace: dict[str, Any] = {"__name__": "generated"}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["build_model"]()


def assert_same_model(g: dict[str, Any], *, init: Any = None, seed: int = 0, dtype: str = "float32",
                      high: int = 2) -> nn.Module:
    built = layerlab.build(g, init=init, seed=seed).eval()
    generated = run_generated(layerlab.to_python(g, init=init, seed=seed)).eval()
    # same names and shapes: the generated state_dict loads strictly into build()'s model
    layerlab.build(g, seed=seed + 1).load_state_dict(generated.state_dict(), strict=True)
    # same seed, same weights
    for (name, a), (other, b) in zip(built.state_dict().items(), generated.state_dict().items(), strict=True):
        assert name == other
        assert torch.equal(a, b), name
    assert [p.requires_grad for p in built.parameters()] == [p.requires_grad for p in generated.parameters()]
    shape = next(n for n in g["nodes"] if n["op"] == "Input")["params"]["shape"]
    x = sample_input(shape, dtype=dtype, high=high)
    with torch.no_grad():
        torch.testing.assert_close(generated(x), built(x), rtol=0, atol=0)
    return generated


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_op_exports(case: Case) -> None:
    assert_same_model(case.graph, dtype=case.dtype, high=case.high)


def test_blocks_repeat_and_residuals_export() -> None:
    assert_same_model(resnet_like())
    assert_same_model(residual(8, 2))


@pytest.mark.parametrize("init", ["kaiming_normal", "orthogonal", {"scheme": "normal", "std": 0.3}, "zeros"])
def test_init_exports_with_the_same_rng_order(init: Any) -> None:
    assert_same_model(resnet_like(), init=init, seed=5)


def test_per_node_init_exports() -> None:
    g = resnet_like()
    by_id = {n["id"]: n for n in g["nodes"]}
    by_id["conv1"]["init"] = {"scheme": "kaiming_uniform", "nonlinearity": "linear"}
    by_id["fc"]["init"] = "default"
    by_id["down"]["init"] = "xavier_uniform"
    source = layerlab.to_python(g, init="orthogonal", seed=2)
    assert "model.stage[0].blk.body.conv1.weight" in source
    assert_same_model(g, init="orthogonal", seed=2)


def test_frozen_layers_export() -> None:
    g = resnet_like()
    by_id = {n["id"]: n for n in g["nodes"]}
    by_id["stem"]["frozen"] = True
    by_id["down"]["frozen"] = True
    model = assert_same_model(g)
    assert not model.stem.weight.requires_grad
    assert not any(p.requires_grad for p in model.down.parameters())
    assert model.fc.weight.requires_grad
    assert "model.down.requires_grad_(False)" in layerlab.to_python(g)


def test_branching_regions_export() -> None:
    g = graph([node("inp", "Input", shape=[3, 6, 6]), node("a", "Conv2d", out_channels=2, padding=1),
               node("blk", "Block"), node("b", "Conv2d", parent="blk", out_channels=3, kernel_size=1),
               node("c", "Conv2d", parent="blk", out_channels=3, kernel_size=3, padding=1),
               node("add", "Add", parent="blk"), node("cat", "Concat"), node("out", "Output")],
              [("inp", "a"), ("inp", "blk"), ("blk", "b"), ("blk", "c"), ("b", "add"), ("c", "add"),
               ("a", "cat"), ("blk", "cat"), ("cat", "out")])
    assert_same_model(g)


def test_raw_parameters_export_in_repeated_blocks_frozen_and_with_names_that_are_not_identifiers() -> None:
    token = node("tok", "ClassToken", form="parameter") | {"name": "cls-token", "frozen": True}
    g = graph([node("inp", "Input", shape=[4, 6]), token, node("blk", "Block", repeat=2), node("pos", "PositionalEmbedding", parent="blk", form="parameter"),
               node("fc", "Linear", parent="blk", out_features=6), node("out", "Output")],
              [("inp", "tok"), ("tok", "blk"), ("blk", "pos"), ("pos", "fc"), ("fc", "blk"), ("blk", "out")])
    model = assert_same_model(g)
    assert [k for k in model.state_dict() if "pos" in k or "cls" in k] == ["cls-token", "blk.0.pos", "blk.1.pos"]
    assert not model.get_parameter("cls-token").requires_grad
    assert model.get_parameter("blk.1.pos").requires_grad
    source = layerlab.to_python(g)
    assert "self.register_parameter('cls-token', nn.Parameter(torch.zeros(1, 1, 6)))" in source
    assert "torch.cat([getattr(self, 'cls-token').expand(inp.size(0), -1, -1), inp], dim=1)" in source
    assert "getattr(model, 'cls-token').requires_grad_(False)" in source
    assert layerlab.build(g).get_parameter("blk.0.pos").shape == (1, 5, 6)


@pytest.mark.parametrize("name", ["torch", "x", "nn"])
def test_ids_that_look_like_forward_names(name: str) -> None:
    g = graph([node("inp", "Input", shape=[3]), node(name, "ReLU"), node("b", "Tanh"), node("cat", "Concat"),
               node("out", "Output")], [("inp", name), ("inp", "b"), (name, "cat"), ("b", "cat"), ("cat", "out")])
    assert_same_model(g)


def test_int64_input_export() -> None:
    g = chain([6], node("emb", "Embedding", num_embeddings=10, embedding_dim=4), node("flat", "Flatten"),
              node("fc", "Linear", out_features=2), dtype="int64")
    assert_same_model(g, dtype="int64", high=10)
    assert "torch.randint(0, 2, (2, 6))" in layerlab.to_python(g)


def test_unseeded_export_has_no_manual_seed() -> None:
    source = layerlab.to_python(chain([3], node("fc", "Linear")), seed=None)
    assert "manual_seed" not in source
    run_generated(source)


def test_invalid_graph_raises() -> None:
    with pytest.raises(layerlab.GraphInvalidError) as info:
        layerlab.to_python(chain([3, 4, 4], node("fc1", "Linear")))
    assert info.value.errors[0].node == "fc1"


def test_generated_file_runs_as_a_script(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text(layerlab.to_python(resnet_like()))
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("torch.Size([2, 4])")


# ---------------------------------------------------------------------------------------------
# Golden file: the generated code is meant to be stable, so a change to it shows in review.


def golden_graph() -> dict[str, Any]:
    g = graph([
        node("inp", "Input", shape=[1, 28, 28]),
        node("conv1", "Conv2d", out_channels=8, kernel_size=3, padding="same"),
        node("act1", "ReLU"),
        node("pool1", "MaxPool2d"),
        node("res", "Block", residual=True),
        node("conv2", "Conv2d", parent="res", out_channels=16, stride=2, padding=1),
        node("bn2", "BatchNorm2d", parent="res"),
        node("flat", "Flatten"),
        node("fc", "Linear", out_features=10),
        node("out", "Output"),
    ], [("inp", "conv1"), ("conv1", "act1"), ("act1", "pool1"), ("pool1", "res"), ("conv2", "bn2"),
        ("res", "flat"), ("flat", "fc"), ("fc", "out")])
    g["name"] = "small_cnn"
    g["nodes"][1]["frozen"] = True
    return g


def test_golden_small_cnn() -> None:
    path = GOLDEN / "small_cnn.py"
    source = layerlab.to_python(golden_graph(), init="kaiming_normal", seed=0)
    if os.environ.get("LAYERLAB_UPDATE_GOLDEN"):
        path.write_text(source)
    assert source == path.read_text(), "generated code changed: review it, then LAYERLAB_UPDATE_GOLDEN=1"
    assert_same_model(golden_graph(), init="kaiming_normal", seed=0)


def test_golden_file_is_clean_python() -> None:
    source = (GOLDEN / "small_cnn.py").read_text()
    compile(source, "small_cnn.py", "exec")
    assert "\n\n\n\ndef" not in source and "nn\n\nclass" not in source  # two blank lines, not one or three


def test_repeated_branching_block_inside_a_branching_region() -> None:
    """Classes for nested regions are defined before use and named apart (Net0, Net1, ...)."""
    g = graph([node("inp", "Input", shape=[4, 5, 5]), node("blk", "Block", repeat=2),
               node("a", "Conv2d", parent="blk", out_channels=4, padding=1),
               node("b", "Conv2d", parent="blk", out_channels=4, kernel_size=1),
               node("add", "Add", parent="blk"), node("side", "Conv2d", out_channels=2, kernel_size=1),
               node("cat", "Concat"), node("out", "Output")],
              [("inp", "blk"), ("blk", "a"), ("blk", "b"), ("a", "add"), ("b", "add"), ("inp", "side"),
               ("blk", "cat"), ("side", "cat"), ("cat", "out")])
    report = layerlab.infer(g)
    assert report.output_shape == [6, 5, 5]
    model = assert_same_model(g)
    assert list(model(sample_input([4, 5, 5])).shape[1:]) == report.output_shape


def test_digit_names_reach_the_right_module() -> None:
    """nn.Sequential's [i] is a position, not a name: a layer named '0' at position 1 (as an
    imported model may have) must be frozen and initialized by name in the generated code."""
    first, second = node("a", "Linear", out_features=4), node("b", "Linear", out_features=3)
    first["name"], second["name"] = "1", "0"
    second["frozen"] = True
    second["init"] = "zeros"
    g = chain([5], first, second)
    model = assert_same_model(g)
    assert not any(p.requires_grad for p in getattr(model, "0").parameters())
    assert all(p.requires_grad for p in getattr(model, "1").parameters())
    assert bool((getattr(model, "0").weight == 0).all())
    # in a branching region, a digit name is an attribute of a plain nn.Module: no [i] there
    g = graph([node("inp", "Input", shape=[3]), node("a", "Linear", out_features=2), node("b", "Tanh"),
               node("cat", "Concat"), node("out", "Output")],
              [("inp", "a"), ("inp", "b"), ("a", "cat"), ("b", "cat"), ("cat", "out")])
    g["nodes"][1]["name"] = "0"
    g["nodes"][1]["frozen"] = True
    g["nodes"][1]["init"] = "orthogonal"
    model = assert_same_model(g, init="xavier_uniform")
    assert not getattr(model, "0").weight.requires_grad


@pytest.mark.parametrize("name", ["my model", 'say """hi""" and quit', "back\\slash", "für", "2nd-try",
                                  'x"""\nimport os\nos.environ["PWNED"] = "1"\n"""', "a(b):\n    pass", ""])
def test_any_graph_name_exports_valid_python_and_never_code(name: str) -> None:
    """The graph name goes into the docstring and, for a branching model, the class name."""
    dag = graph([node("inp", "Input", shape=[3]), node("a", "ReLU"), node("b", "Tanh"), node("cat", "Concat"),
                 node("out", "Output")], [("inp", "a"), ("inp", "b"), ("a", "cat"), ("b", "cat"), ("cat", "out")])
    for g in (dag, chain([3], node("act", "ReLU"))):
        g["name"] = name
        os.environ.pop("PWNED", None)
        assert_same_model(g)
        assert "PWNED" not in os.environ
