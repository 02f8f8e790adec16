"""Bad input: every problem is a report error that names its node and says what is wrong,
never an exception. Plus the format's own guarantees (reserved names, JSON schema)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layerlab
from helpers import chain, edge, errors_for, graph, n_params, node, sample_input, single
from layerlab.graph import RESERVED_NAMES


def only_error(g: Any, **kw: Any) -> Any:
    report = layerlab.infer(g, **kw)
    assert not report.valid
    assert report.output_shape is None
    assert len(report.errors) == 1, report.errors
    return report.errors[0]


def assert_error(g: Any, node_id: str | None, *words: str, field: str | None = None) -> Any:
    """The report has an error naming ``node_id`` whose message (or suggestion) holds every word."""
    report = layerlab.infer(g)
    assert not report.valid
    found = errors_for(report, node_id)
    assert found, f"no error names {node_id!r}: {report.errors}"
    err = found[0]
    text = f"{err.message} {err.suggestion or ''}"
    for word in words:
        assert word in text, text
    if field is not None:
        assert err.field == field
    if node_id is not None:
        assert err.message.startswith(f"{node_id}: ") or node_id in err.message or err.field == "id"
    return err


# ---------------------------------------------------------------------------------------------
# The format: unknown ops and params, wrong types


def test_unknown_op_suggests_the_closest() -> None:
    err = assert_error(chain([3], node("fc", "Linaer")), "fc", "unknown op 'Linaer'", field="op")
    assert err.suggestion == "did you mean 'Linear'?"


def test_unknown_op_in_other_case() -> None:
    err = assert_error(chain([3], node("act", "relu")), "act", "unknown op")
    assert "ReLU" in err.suggestion


def test_unknown_param_lists_the_known_ones() -> None:
    err = assert_error(chain([3], node("fc", "Linear", out_feature=3)), "fc", "no parameter 'out_feature'",
                       field="out_feature")
    assert err.suggestion == "known parameters: in_features, out_features, bias"


@pytest.mark.parametrize(("params", "field", "received"), [
    ({"out_features": "ten"}, "out_features", "'ten'"),
    ({"out_features": 3.5}, "out_features", "3.5"),
    ({"out_features": True}, "out_features", "True"),  # JSON true is not the integer 1
    ({"out_features": 0}, "out_features", "0"),
    ({"bias": "maybe"}, "bias", "'maybe'"),
])
def test_wrong_types_name_the_field_and_the_value(params: dict[str, Any], field: str, received: str) -> None:
    err = only_error(chain([3], node("fc", "Linear", **params)))
    assert (err.node, err.field) == ("fc", field)
    assert f"received {received}" in err.message


def test_union_alternatives_are_one_error() -> None:
    err = only_error(single("Conv2d", {"kernel_size": [1, 2, 3]}, [3, 8, 8]))
    assert (err.node, err.field) == ("layer", "kernel_size")
    assert "received [1, 2, 3]" in err.message


def test_missing_required_param() -> None:
    err = only_error(graph([{"id": "inp", "op": "Input", "params": {}}, node("out", "Output")], [("inp", "out")]))
    assert (err.node, err.field) == ("inp", "shape")
    assert "required" in err.message


@pytest.mark.parametrize("data", ["hello", None, {"nodes": 3}, {"nodes": [{"id": "a"}]}, {"nodes": [], "x": 1}])
def test_malformed_documents_are_errors_not_exceptions(data: Any) -> None:
    report = layerlab.infer(data)
    assert not report.valid
    assert report.errors


def test_params_left_out_are_the_defaults_and_cannot_change_under_another_node() -> None:
    """Nodes that leave their params out share one instance of the defaults: it must be frozen."""
    from pydantic import ValidationError

    from layerlab.graph import parse_graph

    left_out = [{"id": "a", "op": "LayerNorm"}, {"id": "b", "op": "LayerNorm"}]
    g, errors = parse_graph(chain([8], *left_out, node("c", "LayerNorm", eps=0.1)))
    assert errors == []
    a, b, c = (g.node(i) for i in "abc")
    assert a.params is b.params and a.params == type(a.params)() and c.params.eps == 0.1
    with pytest.raises(ValidationError, match="frozen"):
        a.params.eps = 0.5
    a.params = a.params.model_copy(update={"eps": 0.5})  # how a node's params change: a new instance
    assert (a.params.eps, b.params.eps) == (0.5, 1e-5)
    assert "params" not in b.model_dump(exclude_unset=True)  # still left out, as it came


def test_node_without_op() -> None:
    err = only_error({"nodes": [{"id": "a"}]})
    assert (err.node, err.field) == ("a", "op")


def test_bad_id_is_named() -> None:
    report = layerlab.infer(chain([3], node("1abc", "ReLU")))
    assert ("1abc", "id") in {(e.node, e.field) for e in report.errors}


# ---------------------------------------------------------------------------------------------
# Structure


def test_cycle() -> None:
    g = chain([3], ("ReLU", {}), ("Tanh", {}))
    g["edges"].append(edge("l1", "l0"))
    err = assert_error(g, "l0", "cycle")
    assert err.message.endswith("l0 → l1")  # the loop itself, not the Output downstream of it


def test_dangling_edge() -> None:
    g = chain([3], ("ReLU", {}))
    g["edges"].append(edge("l0", "ghost"))
    err = assert_error(g, "l0", "'ghost'", "does not exist")
    assert err.field == "edges[2]"


def test_edge_from_a_missing_node() -> None:
    g = graph([node("inp", "Input", shape=[3]), node("out", "Output")], [("ghost", "out"), ("inp", "out")])
    assert_error(g, "out", "'ghost'", "does not exist")


def test_no_input() -> None:
    g = graph([node("a", "ReLU"), node("out", "Output")], [("a", "out")])
    err = assert_error(g, None, "no Input")
    assert err.suggestion == "add one Input node"


def test_no_output() -> None:
    g = graph([node("inp", "Input", shape=[3]), node("a", "ReLU")], [("inp", "a")])
    assert_error(g, None, "no Output")


def test_two_inputs() -> None:
    g = chain([3], ("ReLU", {}))
    g["nodes"].append(node("inp2", "Input", shape=[3]))
    assert_error(g, "inp2", "2 Input nodes", "inp, inp2")


def test_unreachable_node() -> None:
    g = chain([3], ("ReLU", {}))
    g["nodes"].append(node("lonely", "ReLU"))
    g["nodes"].append(node("after", "ReLU"))
    g["edges"].append(edge("lonely", "after"))
    err = assert_error(g, "lonely", "not connected to the input")
    assert "lonely" in err.suggestion


def test_unused_output() -> None:
    g = chain([3], ("ReLU", {}))
    g["nodes"].append(node("dead", "ReLU"))
    g["edges"].append(edge("l0", "dead"))
    assert_error(g, "dead", "not used", "Output")


def test_nothing_into_output() -> None:
    g = graph([node("inp", "Input", shape=[3]), node("a", "ReLU"), node("out", "Output")], [("inp", "a")])
    report = layerlab.infer(g)
    assert not report.valid
    assert "out" in {e.node for e in report.errors}


def test_wiring_not_done_yet_is_unconnected_and_shape_errors_are_errors() -> None:
    """Layers dropped but not wired up yet are 'unconnected' (a hint in the editor); a wrong
    shape is an 'error'. The editor takes the distinction from here, never from message text."""
    g = graph([node("inp", "Input", shape=[1, 8, 8]), node("conv", "Conv2d"), node("add", "Add"),
               node("fc", "Linear", out_features=3), node("loose", "ReLU"), node("out", "Output")],
              [("inp", "conv"), ("conv", "add"), ("inp", "fc")])
    kinds = {(e.node, e.kind) for e in layerlab.infer(g).errors}
    assert ("loose", "unconnected") in kinds  # nothing feeds it
    assert ("add", "unconnected") in kinds  # Add has 1 of its 2 inputs so far
    assert ("out", "unconnected") in kinds  # nothing into the Output
    assert ("fc", "error") in kinds  # Linear on (1, 8, 8): a real shape error
    assert {k for n, k in kinds if n == "fc"} == {"error"}


def test_duplicate_ids_and_edges() -> None:
    assert_error(chain([3], node("x", "ReLU"), node("x", "Tanh")), "x", "duplicate")
    g = chain([3], ("ReLU", {}))
    g["edges"].append(edge("inp", "l0"))
    assert_error(g, "l0", "twice")


def test_two_inputs_into_a_single_input_op() -> None:
    g = graph([node("inp", "Input", shape=[3]), node("a", "ReLU"), node("b", "Tanh"), node("c", "ReLU"),
               node("out", "Output")], [("inp", "a"), ("inp", "b"), ("a", "c"), ("b", "c"), ("c", "out")])
    err = assert_error(g, "c", "exactly 1 input", "received 2")
    assert "Add or Concat" in err.suggestion


# ---------------------------------------------------------------------------------------------
# Shapes


def test_kernel_larger_than_input() -> None:
    err = assert_error(single("Conv2d", {"kernel_size": 7}, [16, 5, 5]), "layer", "kernel 7×7", "(16, 5, 5)",
                       field="kernel_size")
    assert "use padding='same' or a smaller kernel" in err.suggestion


def test_sizes_going_to_zero() -> None:
    err = assert_error(single("Upsample", {"scale_factor": 0.3}, [3, 2, 2]), "layer", "shrinks to 0")
    assert "at least 1" in err.message
    pools = chain([3, 4, 4], ("MaxPool2d", {}), ("MaxPool2d", {}), node("p3", "MaxPool2d"))
    assert_error(pools, "p3", "larger than the padded input", "(3, 1, 1)")


def test_linear_after_chw_suggests_flatten() -> None:
    err = only_error(chain([3, 4, 4], node("fc1", "Linear")))
    assert err.node == "fc1"
    assert "(3, 4, 4)" in err.message
    assert err.suggestion == "insert Flatten before fc1"
    assert err.fix == {"node": "fc1", "action": "insert_before", "op": "Flatten"}


def test_flatten_fix_works() -> None:
    """Applying the fix gives a valid graph."""
    fixed = chain([3, 4, 4], ("Flatten", {}), node("fc1", "Linear"))
    assert layerlab.infer(fixed).valid


def test_mismatched_add() -> None:
    g = graph([node("inp", "Input", shape=[3, 4, 4]), node("a", "Conv2d", out_channels=4, padding=1),
               node("b", "Conv2d", out_channels=3, padding=1), node("add", "Add"), node("out", "Output")],
              [("inp", "a"), ("inp", "b"), ("a", "add"), ("b", "add"), ("add", "out")])
    err = assert_error(g, "add", "(4, 4, 4)", "(3, 4, 4)")
    assert "projection" in err.suggestion


def test_channels_not_divisible_by_groups() -> None:
    assert_error(single("Conv2d", {"groups": 2, "out_channels": 4}, [3, 5, 5]), "layer", "groups=2",
                 "in_channels=3", field="groups")
    assert_error(single("GroupNorm", {"num_groups": 4}, [6, 5, 5]), "layer", "num_groups=4", "6 channels")


def test_declared_in_channels_must_agree() -> None:
    err = assert_error(single("Conv2d", {"in_channels": 4}, [3, 5, 5]), "layer", "in_channels=4", "3",
                       field="in_channels")
    assert "3" in err.suggestion
    assert_error(single("Linear", {"in_features": 10}, [12]), "layer", "in_features=10", "12")
    assert_error(single("BatchNorm2d", {"num_features": 8}, [3, 5, 5]), "layer", "num_features=8", "3")


def test_dtype_mismatch() -> None:
    assert_error(single("Embedding", {}, [5]), "layer", "integer ids")
    assert_error(single("Conv1d", {}, [3, 5], dtype="int64"), "layer", "float values")


def test_dim_counts_the_batch() -> None:
    err = assert_error(single("Softmax", {"dim": 0}, [5]), "layer", "batch dimension", field="dim")
    assert err.suggestion == "use dim=1"
    assert_error(single("Concat", {"dim": 3}, [5]), "layer")  # min 2 inputs: still named


def test_huge_linear_is_refused() -> None:
    assert_error(single("Linear", {"out_features": 1_000_000}, [1_000_000]), "layer", "parameters", "limit")


def test_huge_input_is_an_error_not_an_exception() -> None:
    err = only_error(chain([1_000_000, 1_000_000, 1_000_000]))
    assert err.node == "inp"
    assert "2^31" in err.message


def test_huge_activation_is_refused() -> None:
    g = single("Upsample", {"scale_factor": 64}, [64, 1024, 1024])
    assert_error(g, "layer", "2^31")


def test_node_count_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    g = chain([3], *[("ReLU", {})] * 8)  # 10 nodes
    monkeypatch.setenv("LAYERLAB_MAX_NODES", "9")
    err = only_error(g)
    assert "10 nodes" in err.message and "limit of 9" in err.message
    assert "LAYERLAB_MAX_NODES" in err.suggestion
    monkeypatch.setenv("LAYERLAB_MAX_NODES", "10")
    assert layerlab.infer(g).valid


@pytest.mark.parametrize("value", ["lots", "", "-3"])
def test_node_count_cap_ignores_a_bad_setting(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("LAYERLAB_MAX_NODES", value)
    assert layerlab.infer(chain([3], ("ReLU", {}))).valid
    assert "limit of 5000" in only_error(chain([3], *[("ReLU", {})] * 4999)).message


def test_node_count_cap_default() -> None:
    from layerlab.shapes import DEFAULT_MAX_NODES

    assert DEFAULT_MAX_NODES == 5000
    report = layerlab.infer(chain([3], *[("ReLU", {})] * 4999))  # 5001 nodes
    assert not report.valid
    assert "5001 nodes" in report.errors[0].message


# ---------------------------------------------------------------------------------------------
# Blocks


def residual_block(out_channels: int, **params: Any) -> dict[str, Any]:
    return graph([node("inp", "Input", shape=[3, 4, 4]), node("blk", "Block", residual=True, **params),
                  node("c", "Conv2d", parent="blk", out_channels=out_channels, padding=1), node("out", "Output")],
                 [("inp", "blk"), ("blk", "out")])


def test_identity_residual_with_different_shapes() -> None:
    err = assert_error(residual_block(5, shortcut="identity"), "blk", "(3, 4, 4)", "(5, 4, 4)", field="shortcut")
    assert "shortcut='projection'" in err.suggestion


def test_edge_crossing_a_block_boundary() -> None:
    g = graph([node("inp", "Input", shape=[3, 4, 4]), node("blk", "Block"),
               node("c", "Conv2d", parent="blk", out_channels=5, padding=1), node("r", "ReLU"), node("out", "Output")],
              [("inp", "blk"), ("blk", "r"), ("c", "r"), ("r", "out")])
    err = assert_error(g, "r", "crosses a block boundary", "'blk'")
    assert "block itself" in err.suggestion


def test_block_problems() -> None:
    empty = graph([node("inp", "Input", shape=[3]), node("blk", "Block"), node("out", "Output")],
                  [("inp", "blk"), ("blk", "out")])
    assert_error(empty, "blk", "empty")
    loose = graph([node("inp", "Input", shape=[3]), node("blk", "Block"), node("a", "ReLU", parent="blk"),
                   node("b", "Tanh", parent="blk"), node("out", "Output")], [("inp", "blk"), ("blk", "out")])
    assert_error(loose, "blk", "2 loose ends", "a, b")
    orphan = chain([3], node("a", "ReLU", parent="nowhere"))
    assert_error(orphan, "a", "'nowhere'", "does not exist", field="parent")
    not_block = chain([3], node("a", "ReLU"), node("b", "ReLU", parent="a"))
    assert_error(not_block, "b", "not a Block", field="parent")
    inner_input = chain([3], node("blk", "Block"), node("a", "ReLU", parent="blk"))
    inner_input["nodes"][0]["parent"] = "blk"
    assert_error(inner_input, "inp", "top level", field="parent")


def test_block_nesting_loop() -> None:
    g = graph([node("inp", "Input", shape=[3]), node("b1", "Block", parent="b2"), node("b2", "Block", parent="b1"),
               node("a", "ReLU", parent="b1"), node("out", "Output")], [("inp", "b1"), ("b1", "out")])
    report = layerlab.infer(g)
    assert not report.valid
    assert any("loops back" in e.message for e in report.errors)


# ---------------------------------------------------------------------------------------------
# Reserved names


@pytest.mark.parametrize("name", ["train", "forward", "class", "parameters", "to", "append", "graph"])
def test_reserved_ids(name: str) -> None:
    err = assert_error(chain([3], node(name, "ReLU")), name, "reserved", field="id")
    assert repr(name) in err.message


def test_reserved_module_name() -> None:
    n = node("act", "ReLU")
    n["name"] = "train"
    assert_error(chain([3], n), "act", "reserved", field="name")


def test_reserved_names_cover_torch_modules() -> None:
    """No node id can hide or clash with an attribute of the modules it is built into."""
    import torch
    from torch import fx, nn

    traced = fx.symbolic_trace(nn.Sequential(nn.ReLU()))
    public = {n for n in dir(nn.Module) if not n.startswith("_")}
    public |= {n for n in vars(nn.Module()) if not n.startswith("_")}
    public |= {n for n in dir(nn.Sequential) if not n.startswith("_")}
    public |= {n for n in dir(fx.GraphModule) if not n.startswith("_")}
    public |= {n for n in vars(traced) if not n.startswith("_")}
    assert public - RESERVED_NAMES == set()
    assert torch  # imported for the classes above


@pytest.mark.parametrize("name", ["append", "insert", "graph", "meta", "code"])
def test_reserved_container_names_would_break_the_build(name: str) -> None:
    """Why those names are reserved: torch refuses them as submodules of the containers."""
    from torch import fx, nn

    refused = 0
    for container in (nn.Sequential(), fx.symbolic_trace(nn.Sequential(nn.ReLU()))):
        layer = nn.ReLU()
        try:
            container.add_module(name, layer)
        except (KeyError, TypeError):
            refused += 1
        else:
            refused += getattr(container, name) is not layer  # hidden behind the container's own attribute
    assert refused


def test_invalid_graph_never_raises_from_infer() -> None:
    for g in [chain([3], node("fc1", "Linear", out_features=True)), {"nodes": [1, 2]}, [], 42]:
        report = layerlab.infer(g)
        assert not report.valid


def test_build_raises_graph_invalid_error_with_the_errors() -> None:
    with pytest.raises(layerlab.GraphInvalidError) as info:
        layerlab.build(chain([3, 4, 4], node("fc1", "Linear")))
    assert info.value.errors[0].node == "fc1"
    assert "insert Flatten before fc1" in str(info.value)


def test_unused_output_inside_a_block() -> None:
    """A dead end inside a block would compute for nothing (and leave parameters without
    gradients): an error, as at the top level, reported once however many copies."""
    g = graph([node("inp", "Input", shape=[4]), node("blk", "Block", repeat=3),
               node("a", "Linear", parent="blk", out_features=4), node("b", "ReLU", parent="blk"),
               node("dead", "Linear", parent="blk", out_features=3), node("out", "Output")],
              [("inp", "blk"), ("a", "b"), ("a", "dead"), ("b", "blk"), ("blk", "out")])
    err = only_error(g)
    assert err.node == "dead"
    assert "not used" in err.message and "'blk'" in err.message


def nested(depth: int) -> dict[str, Any]:
    nodes = [node("inp", "Input", shape=[3]), node("b0", "Block"), node("out", "Output")]
    nodes += [node(f"b{i}", "Block", parent=f"b{i - 1}") for i in range(1, depth)]
    nodes.append(node("r", "ReLU", parent=f"b{depth - 1}"))
    return graph(nodes, [("inp", "b0"), ("b0", "out")])


def test_deep_nesting_is_an_error_not_a_recursion_error() -> None:
    from layerlab.shapes import MAX_NESTING

    err = only_error(nested(500))
    assert err.field == "parent"
    assert f"limit of {MAX_NESTING}" in err.message
    model = layerlab.build(nested(MAX_NESTING))  # the deepest allowed still builds and exports
    assert list(model.state_dict()) == []
    assert "def build_model" in layerlab.to_python(nested(MAX_NESTING))
    assert not layerlab.infer(nested(MAX_NESTING + 1)).valid


# ---------------------------------------------------------------------------------------------
# Fuzz: random structures, never an exception; a valid report builds and runs at its shapes

LAYERS = [("ReLU", {}), ("Conv2d", {"out_channels": 2, "padding": 1}), ("Conv2d", {"out_channels": 3, "stride": 2}),
          ("LayerNorm", {}), ("Flatten", {}), ("Linear", {"out_features": 4}), ("Tanh", {})]


@st.composite
def random_graph(draw: st.DrawFn) -> dict[str, Any]:
    """A chain of layers and blocks (maybe nested, repeated, residual, branching), then a few
    random mutations: extra or missing edges, moved parents, frozen flags."""
    nodes = [node("inp", "Input", shape=draw(st.sampled_from([[4], [2, 4, 4], [3, 4]]))), node("out", "Output")]
    edges: list[tuple[str, str]] = []
    counter = iter(range(100))

    def layer(parent: str | None) -> str:
        op, params = draw(st.sampled_from(LAYERS))
        node_id = f"n{next(counter)}"
        nodes.append(node(node_id, op, parent=parent, **params))
        return node_id

    def block(parent: str | None, depth: int) -> str:
        node_id = f"blk{next(counter)}"
        nodes.append(node(node_id, "Block", parent=parent, repeat=draw(st.integers(1, 2)),
                          residual=draw(st.booleans())))
        prev = None
        for _ in range(draw(st.integers(1, 2))):
            child = block(node_id, depth + 1) if depth < 2 and draw(st.booleans()) else layer(node_id)
            if prev is not None:
                edges.append((prev, child))
            prev = child
        return node_id

    prev = "inp"
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["layer", "block", "branch"]))
        if kind == "branch":
            a, b = layer(None), layer(None)
            merge = f"m{next(counter)}"
            nodes.append(node(merge, draw(st.sampled_from(["Add", "Concat"]))))
            edges += [(prev, a), (prev, b), (a, merge), (b, merge)]
            prev = merge
            continue
        item = layer(None) if kind == "layer" else block(None, 0)
        edges.append((prev, item))
        prev = item
    edges.append((prev, "out"))
    ids = [n["id"] for n in nodes]
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        mutation = draw(st.sampled_from(["add_edge", "drop_edge", "parent", "freeze", "op"]))
        if mutation == "add_edge":
            edges.append((draw(st.sampled_from(ids)), draw(st.sampled_from(ids))))
        elif mutation == "drop_edge" and edges:
            edges.pop(draw(st.integers(0, len(edges) - 1)))
        elif mutation == "op":
            draw(st.sampled_from(nodes[1:]))["op"] = draw(st.sampled_from(["Nope", "Block", "Add", "Input"]))
        elif mutation == "parent":
            draw(st.sampled_from(nodes))["parent"] = draw(st.sampled_from(ids))
        else:
            draw(st.sampled_from(nodes))["frozen"] = True
    return graph(nodes, edges)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graph())
def test_random_structures_never_raise(g: dict[str, Any]) -> None:
    report = layerlab.infer(g)
    if not report.valid:
        assert report.errors
        assert all(e.message for e in report.errors)
        return
    import torch

    model = layerlab.build(g).eval()
    x = sample_input(report.input_shape)
    with torch.no_grad():
        assert list(model(x).shape[1:]) == report.output_shape
    assert n_params(model) == report.totals.params
    run: dict[str, Any] = {}
    exec(compile(layerlab.to_python(g), "<generated>", "exec"), run)  # noqa: S102
    assert list(run["build_model"]().eval()(x).shape[1:]) == report.output_shape


def test_graph_json_schema_discriminates_every_op() -> None:
    import json

    from layerlab.graph import graph_json_schema

    schema = json.loads(json.dumps(graph_json_schema()))
    items = schema["properties"]["nodes"]["items"]
    assert items["discriminator"]["propertyName"] == "op"
    assert set(items["discriminator"]["mapping"]) == {e["op"] for e in layerlab.catalog()["ops"]}


def test_graph_round_trips_through_json() -> None:
    """A parsed graph (nested blocks included) dumps to JSON that parses to the same graph."""
    g = nested(3)
    g["nodes"][1]["init"] = {"scheme": "normal", "std": 0.1}
    parsed, errors = layerlab.parse_graph(g)
    assert errors == []
    again, errors = layerlab.parse_graph(parsed.model_dump(mode="json"))
    assert errors == [] and again == parsed
    assert layerlab.infer(again).model_dump() == layerlab.infer(g).model_dump()
