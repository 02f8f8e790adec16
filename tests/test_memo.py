"""The report with a memo (what the API's report workers keep between edits) is the report without
one: over random edit sequences on every example graph, each report made through one long-lived
memo equals a cold ``infer`` of the same JSON. And the memo stays bounded."""

from __future__ import annotations

import contextlib
import gc
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import chain
from layerlab import infer
from layerlab.graph import GraphInvalidError, split_graph_text
from layerlab.memo import LRU, ShapeMemo
from layerlab.shapes import report_json
from layerlab.shapes.walk import Walk

EXAMPLES = sorted(Path(__file__).resolve().parents[1].glob("examples/*.json"))
BASES = {p.stem: json.loads(p.read_text()) for p in EXAMPLES}
BASES["long_chain"] = chain([12], *[("Linear", {"out_features": 12}), ("LayerNorm", {}), ("ReLU", {})] * 20)


def cold(body: bytes) -> Any:
    return json.loads(infer(json.loads(body)).model_dump_json())


# One edit: a small change a person makes in the editor, valid or not.
VALUES = st.one_of(st.integers(-2, 70), st.booleans(), st.sampled_from([0.5, 1.0, "same", None, [2, 2]]))
EDITS = st.one_of(
    st.tuples(st.just("param"), st.integers(0, 10**6), st.sampled_from(
        ["out_features", "out_channels", "kernel_size", "padding", "stride", "p", "repeat", "residual",
         "shortcut", "num_features", "shape", "hidden_size", "dim"]), VALUES),
    st.tuples(st.just("drop_param"), st.integers(0, 10**6)),
    st.tuples(st.just("frozen"), st.integers(0, 10**6), st.booleans()),
    st.tuples(st.just("init"), st.integers(0, 10**6), st.sampled_from([None, "kaiming_normal", "zeros"])),
    st.tuples(st.just("move"), st.integers(0, 10**6), st.floats(-500, 500, allow_nan=False)),
    st.tuples(st.just("label"), st.integers(0, 10**6), st.text(max_size=5)),
    st.tuples(st.just("delete_node"), st.integers(0, 10**6)),
    st.tuples(st.just("delete_edge"), st.integers(0, 10**6)),
    st.tuples(st.just("add_edge"), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(st.just("reparent"), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(st.just("undo")),
)


def apply(g: dict[str, Any], edit: tuple[Any, ...], history: list[dict[str, Any]]) -> dict[str, Any]:
    kind = edit[0]
    if kind == "undo":
        return history[-2] if len(history) > 1 else g
    g = json.loads(json.dumps(g))
    nodes, edges = g["nodes"], g["edges"]
    if not nodes:
        return g
    n = nodes[edit[1] % len(nodes)] if len(edit) > 1 else None
    if kind == "param":
        n.setdefault("params", {})[edit[2]] = edit[3]
    elif kind == "drop_param" and n.get("params"):
        n["params"].pop(sorted(n["params"])[0])
    elif kind == "frozen":
        n["frozen"] = edit[2]
    elif kind == "init":
        n["init"] = edit[2]
    elif kind == "move":
        n["position"] = {"x": edit[2], "y": 0}
    elif kind == "label":
        n["label"] = edit[2]
    elif kind == "delete_node":
        nodes.remove(n)
        g["edges"] = [e for e in edges if n["id"] not in (e["source"], e["target"])]
    elif kind == "delete_edge" and edges:
        edges.pop(edit[1] % len(edges))
    elif kind == "add_edge":
        edges.append({"source": n["id"], "target": nodes[edit[2] % len(nodes)]["id"]})
    elif kind == "reparent":
        blocks = [m["id"] for m in nodes if m["op"] == "Block"]
        if blocks:
            n["parent"] = blocks[edit[2] % len(blocks)]
    return g


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(sorted(BASES)), edits=st.lists(EDITS, min_size=1, max_size=12),
       compact=st.booleans())
def test_reports_through_one_memo_equal_cold_reports_over_random_edits(
        base: str, edits: list[tuple[Any, ...]], compact: bool) -> None:
    memo = ShapeMemo()
    g = BASES[base]
    history = [g]
    separators = (",", ":") if compact else None  # the editor's JSON.stringify has no spaces
    for edit in [("label", 0, "")] + edits:
        g = apply(g, edit, history)
        history.append(g)
        body = json.dumps(g, separators=separators).encode()
        assert json.loads(report_json(body, memo=memo)) == cold(body), edit
        assert json.loads(report_json(body)) == cold(body)  # and the cold path of the same function


def test_a_settings_edit_deep_in_a_long_chain_is_walked_again_from_there_only() -> None:
    memo = ShapeMemo()
    g = BASES["long_chain"]
    report_json(json.dumps(g).encode(), memo=memo)
    ruled: list[str] = []
    original = memo.rules.put
    memo.rules.put = lambda key, value, **kw: (ruled.append(value[0].id), original(key, value, **kw))  # type: ignore[method-assign]
    walked: list[str] = []
    eval_node = Walk.eval_node

    def spy(self: Walk, m: Any, *args: Any, **kwargs: Any) -> Any:
        walked.append(m.id)
        return eval_node(self, m, *args, **kwargs)

    edited = json.loads(json.dumps(g))
    edited["nodes"][31]["params"]["out_features"] = 13  # l30, a Linear: its LayerNorm, ReLU and next Linear change
    body = json.dumps(edited).encode()
    Walk.eval_node = spy  # type: ignore[method-assign]
    try:
        incremental = report_json(body, memo=memo)
    finally:
        Walk.eval_node = eval_node  # type: ignore[method-assign]
    assert json.loads(incremental) == cold(body)
    assert ruled == ["l30", "l31", "l32", "l33"]  # nothing before it, nothing after the next Linear
    assert walked == ["l30", "l31", "l32", "l33"]  # the walk itself, not only the rules: a full one visits all


def test_json_values_equal_in_python_but_not_in_json_are_told_apart() -> None:
    memo = ShapeMemo()
    for width in (3, True, 3.0, 1, True):  # True == 1 and 3 == 3.0 in Python; a width must be an integer
        body = json.dumps(chain([4], ("Linear", {"out_features": width}))).encode()
        assert json.loads(report_json(body, memo=memo)) == cold(body)
    assert cold(json.dumps(chain([4], ("Linear", {"out_features": True}))).encode())["valid"] is False


@pytest.mark.parametrize("text", [
    '{"nodes": [{"id": "a"}, {"id": "b"}], "edges": []}',
    ' \n{ "edges" : [ ] , "nodes" : [ 1 , [2] ] }\t',
    '{"nodes": [], "nodes": [{"id": "x"}]}',
    '{"nodes": {"a": 1}}', '{"nodes": [1,]}', '{"nodes": [1]} x', '[1]', '{}', '{"nodes": [1], "edges": null}',
])
def test_the_graph_text_splits_as_json_loads_reads_it(text: str) -> None:
    split = split_graph_text(text)
    try:
        data = json.loads(text)
    except ValueError:
        assert split is None
        return
    if split is None:  # not an object with arrays of nodes and edges: the plain path validates it
        assert not (isinstance(data, dict) and isinstance(data.get("nodes"), list)
                    and isinstance(data.get("edges", []), list))
        return
    top, nodes, edges = split
    assert [json.loads(t) for t, _ in nodes] == [v for _, v in nodes] == data["nodes"]
    known = {t for t, _ in nodes}.__contains__  # every item seen before: none is decoded again
    again = split_graph_text(text, known=known, known_edges=lambda t: edges is not None and t == edges[0])
    assert again is not None and [t for t, _ in again[1]] == [t for t, _ in nodes]
    if edges is not None:
        assert again[2] is not None and again[2][0] == edges[0]
    if edges is not None:
        assert json.loads(edges[0]) == edges[1]
    assert {**top, "nodes": data["nodes"], **({"edges": edges[1]} if edges is not None else {})} == data


# Texts that look like the separator between two of the editor's nodes, inside strings and inside
# a node's own nested objects: the search for the next node must never cut a node there.
TRICKY = st.sampled_from(['},{"id":"b"', '}]', '],"edges":[', '{"id":', "\\", '"', "]", "x"])


@st.composite
def tricky_graph(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 6))
    g = chain([4], *[("Linear", {"out_features": 4})] * n)
    for node in g["nodes"]:
        node["position"] = {"x": draw(st.integers(0, 9)), "y": 0}
        kind = draw(st.sampled_from(["plain", "label", "nested", "pretty"]))
        if kind == "label":
            node["label"] = "".join(draw(st.lists(TRICKY, max_size=4)))
        elif kind == "nested":  # an unknown param holding objects with ids: an error naming it
            node["params"]["extra"] = [{"a": 1}, {"id": draw(st.sampled_from(["b", "n1", "x"]))}]
    g["edges"] = [{"id": f"e{i}", **e} for i, e in enumerate(g["edges"])]  # React Flow's edges: id first
    return g


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=tricky_graph(), edits=st.lists(EDITS, max_size=6), data=st.data())
def test_nodes_seen_before_are_found_by_their_text_and_never_cut_where_a_separator_is_quoted(
        g: dict[str, Any], edits: list[tuple[Any, ...]], data: st.DataObject) -> None:
    memo = ShapeMemo()
    history = [g]
    for edit in [("label", 0, '},{"id":"n1"')] + edits:
        g = apply(g, edit, history)
        history.append(g)
        indent = data.draw(st.sampled_from([None, None, 1]))  # the editor's compact text, or pretty
        body = json.dumps(g, separators=(",", ":") if indent is None else None, indent=indent).encode()
        assert json.loads(report_json(body, memo=memo)) == cold(body), edit
        split = split_graph_text(body.decode(), known=memo.nodes.__contains__,
                                 known_edges=memo.edges.__contains__)
        assert split is not None
        assert [json.loads(t) for t, _ in split[1]] == json.loads(body)["nodes"]


def test_a_node_longer_than_the_search_window_is_decoded_and_so_is_the_rest() -> None:
    g = chain([4], *[("Linear", {"out_features": 4}), ("ReLU", {})] * 4)
    text = json.dumps(g, separators=(",", ":"))
    # node 4 with 5,000 spaces inside it: no separator within reach of its start
    start = text.index('{"id":"' + g["nodes"][4]["id"] + '"')
    long_text = text[:start + 1] + " " * 5000 + text[start + 1:]
    memo = ShapeMemo()
    for body in (text, long_text, long_text, text):
        assert json.loads(report_json(body.encode(), memo=memo)) == cold(body.encode())
    split = split_graph_text(long_text, known=memo.nodes.__contains__, known_edges=memo.edges.__contains__)
    assert split is not None
    nodes = split[1]
    # known up to the one before it (whose separator is the spaced one), decoded from there on
    assert [v is None for _, v in nodes] == [True] * 3 + [False] * (len(nodes) - 3)
    assert [json.loads(t) for t, _ in nodes] == g["nodes"]


def test_a_body_that_is_not_json_is_the_usual_422() -> None:
    with pytest.raises(GraphInvalidError, match="not valid JSON"):
        report_json(b'{"nodes": [', memo=ShapeMemo())
    utf16 = json.dumps(chain([4], ("ReLU", {}))).encode("utf-16")  # json.loads reads UTF-16 too
    assert json.loads(report_json(utf16, memo=ShapeMemo()))["valid"] is True


def test_the_memo_is_bounded() -> None:
    memo = ShapeMemo(max_entries=40, max_walks=2)
    for width in range(1, 30):  # 29 different graphs of 62 nodes each
        g = chain([width], *[("Linear", {"out_features": width}), ("ReLU", {})] * 30)
        body = json.dumps(g).encode()
        assert json.loads(report_json(body, memo=memo)) == cold(body)
        assert len(memo.nodes) <= 40 and len(memo.rules) <= 40
        assert len(memo.walks) <= 2 and len(memo.edges) <= 8
    lru: LRU[int, int] = LRU(3)
    for i in range(5):
        lru.put(i, i)
    lru.get(2)
    lru.put(5, 5)
    assert [k for k in range(6) if lru.get(k) is not None] == [2, 4, 5]
    with pytest.raises(ValueError, match="at least 1"):
        LRU(0)


def test_reports_make_no_reference_cycles() -> None:
    """A report worker moves what it holds out of the GC's sight after each report (``offload._settle``);
    that keeps nothing a collection would free only while reports leave no cycles behind. Valid and
    invalid graphs, edits, bodies that are not graphs, through a memo small enough to evict always."""
    rng = random.Random(7)
    memo = ShapeMemo(max_entries=50, max_walks=2)
    bodies = [b'{"nodes": [', b"[]", b'{"nodes": 3}', b'{"nodes": [{"id": "x", "op": "Nope"}]}']
    for g in BASES.values():
        history = [g]
        for _ in range(15):
            g = apply(g, _random_edit(rng), history)
            history.append(g)
            bodies.append(json.dumps(g, separators=(",", ":")).encode())
    gc.collect()
    gc.disable()
    try:
        for body in bodies:
            with contextlib.suppress(GraphInvalidError):
                report_json(body, memo=memo)
        assert gc.collect() == 0  # unreachable objects that only the cyclic GC could have freed
    finally:
        gc.enable()


def _random_edit(rng: random.Random) -> tuple[Any, ...]:
    kind = rng.choice(["param", "frozen", "move", "delete_node", "delete_edge", "add_edge", "reparent", "undo"])
    if kind == "param":
        return ("param", rng.randrange(10**6), rng.choice(["out_features", "kernel_size", "repeat", "p"]),
                rng.choice([-1, 0, 3, 64, True, "same", None]))
    if kind == "undo":
        return ("undo",)
    return (kind, rng.randrange(10**6), rng.randrange(10**6) if kind in ("add_edge", "reparent") else rng.random() > 0.5)


def test_the_report_endpoint_answers_edit_after_edit_as_a_cold_infer(tmp_path: Path) -> None:
    """Over real HTTP, through the report worker process and its memo."""
    from fastapi.testclient import TestClient

    from layerlab.api import Settings, create_app

    g = BASES["mnist_resnet"]
    with TestClient(create_app(Settings(data_dir=tmp_path, cpu_workers=1))) as client:
        for edit in [("label", 0, "x"), ("param", 1, "out_channels", 8), ("frozen", 6, True),
                     ("param", 1, "out_channels", True), ("undo",), ("delete_edge", 3), ("param", 9, "padding", 0)]:
            g = apply(g, edit, [BASES["mnist_resnet"], g])
            body = json.dumps(g, separators=(",", ":")).encode()
            r = client.post("/api/graphs/report?batch_size=8", content=body,
                            headers={"content-type": "application/json"})
            assert r.status_code == 200
            assert r.json() == json.loads(infer(json.loads(body), batch_size=8).model_dump_json()), edit
