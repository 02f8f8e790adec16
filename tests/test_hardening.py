"""Bounded work for any input: graphs whose nested repeats multiply past the cap are refused
before anything expands them, in the analysis and in every route that analyzes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import layerlab
from helpers import graph, node
from layerlab.api import Settings, create_app
from layerlab.graph import DEFAULT_MAX_INSTANCES, expanded_sizes, parse_graph


def nested_blocks(depth: int, repeat: int, *, layers: int = 1) -> dict[str, Any]:
    """Input → b0 ⊃ b1 ⊃ … ⊃ b{depth-1} ⊃ ``layers`` ReLUs → Output; every block repeats ``repeat`` times."""
    nodes = [node("inp", "Input", shape=[8])]
    parent = None
    for i in range(depth):
        nodes.append(node(f"b{i}", "Block", parent, repeat=repeat))
        parent = f"b{i}"
    nodes += [node(f"r{j}", "ReLU", parent) for j in range(layers)]
    nodes.append(node("out", "Output"))
    edges = [("inp", "b0"), ("b0", "out")] + [(f"b{i}", f"b{i + 1}") for i in range(depth - 1)]
    edges += [(f"b{depth - 1}", "r0")] + [(f"r{j}", f"r{j + 1}") for j in range(layers - 1)]
    return graph(nodes, edges)


# The probe that took a core and ~1.26 GB a minute: 31 nested Blocks of repeat 2 (2^31 copies), 2.5 KB.
BOMB = nested_blocks(31, 2)


def test_expanded_size_matches_the_instances_the_analysis_walks() -> None:
    g = nested_blocks(3, 3, layers=2)
    g["nodes"].insert(1, node("pre", "ReLU"))
    g["edges"] = [e for e in g["edges"] if e["source"] != "inp"] + [{"source": "inp", "target": "pre"},
                                                                   {"source": "pre", "target": "b0"}]
    report = layerlab.infer(g)
    assert report.valid, report.errors
    total, inside = expanded_sizes(parse_graph(g)[0])
    assert total == sum(n.instances for n in report.nodes)
    # b0 holds 3 copies of (b1 + 3 copies of (b2 + 3 copies of two ReLUs))
    assert inside == {"b2": 6, "b1": 3 + 18, "b0": 3 + 9 + 54}


def test_nested_repeats_are_refused_before_expanding_naming_the_outermost_block() -> None:
    report = layerlab.infer(BOMB)
    assert not report.valid
    [err] = report.errors
    assert err.node == "b0" and err.field == "repeat"
    assert f"above the limit of {DEFAULT_MAX_INSTANCES:,}" in err.message
    assert f"{2**32 - 2:,} layer instances" in err.message  # b1…b30 and the ReLU, all copies
    assert "LAYERLAB_MAX_INSTANCES" in err.suggestion


def test_the_outermost_multiplying_block_is_named_not_an_unrepeated_wrapper() -> None:
    g = nested_blocks(5, 16)
    g["nodes"][1]["params"]["repeat"] = 1  # b0 wraps without multiplying: b1 is the culprit
    [err] = layerlab.infer(g).errors
    assert err.node == "b1"
    assert err.message.startswith("b1: repeat=16")


def test_the_cap_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    g = nested_blocks(2, 10)  # inp, b0, out + b1 ×10 + ReLU ×100 = 113 instances
    assert layerlab.infer(g).valid
    monkeypatch.setenv("LAYERLAB_MAX_INSTANCES", "112")
    [err] = layerlab.infer(g).errors
    assert "the whole graph to 113, above the limit of 112" in err.message
    monkeypatch.setenv("LAYERLAB_MAX_INSTANCES", "113")
    assert layerlab.infer(g).valid
    monkeypatch.setenv("LAYERLAB_MAX_INSTANCES", "not a number")
    assert layerlab.infer(g).valid
    assert not layerlab.analyze(g, max_instances=100).report.valid


@pytest.fixture
def client(tmp_path: Path):
    with TestClient(create_app(Settings(data_dir=tmp_path, demo=False))) as c:
        yield c


def test_report_export_and_runs_refuse_the_nested_repeat_graph(client: TestClient) -> None:
    r = client.post("/api/graphs/report", json=BOMB)
    assert r.status_code == 200
    assert [e["node"] for e in r.json()["errors"]] == ["b0"]
    for fmt in ("python", "json", "torchscript"):
        r = client.post(f"/api/export?format={fmt}", json=BOMB)
        assert r.status_code == 422, fmt
        assert r.json()["detail"][0]["node"] == "b0"
    project = client.post("/api/projects", json={"name": "bomb", "graph": BOMB}).json()["id"]
    r = client.post("/api/runs", json={"project_id": project, "config": {"epochs": 1}})
    assert r.status_code == 422
    assert r.json()["detail"][0]["node"] == "b0"
    assert client.get("/api/runs").json() == []
