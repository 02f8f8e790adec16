"""Bounded work for any input: graphs whose nested repeats multiply past the cap are refused
before anything expands them (in the analysis and every route that analyzes), and uploads are
sized from their headers before anything is decompressed or parsed."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import layerlab
from helpers import graph, node
from layerlab.api import Settings, create_app
from layerlab.graph import DEFAULT_MAX_INSTANCES, expanded_sizes, parse_graph
from layerlab.train.archive import UploadLimits
from layerlab.train.config import UploadRef
from layerlab.train.data import load_upload


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


def deep_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_a_graph_nested_past_the_recursion_limit_is_an_error_never_an_exception(client: TestClient) -> None:
    from layerlab.export import export_graph
    from layerlab.graph import GraphInvalidError
    from layerlab.script import to_script

    deep = graph([node("inp", "Input", shape=[4]), node("fc", "Linear", out_features=deep_list(5000)),
                  node("out", "Output")], [("inp", "fc"), ("fc", "out")])
    report = layerlab.infer(deep)  # errors collected, never raised
    assert not report.valid and [e.message for e in report.errors] == ["the graph is nested too deeply"]
    for make in (layerlab.to_python, lambda g: export_graph(g, "json"), lambda g: to_script(g, {})):
        with pytest.raises(GraphInvalidError, match="nested too deeply"):
            make(deep)
    # Over HTTP the body itself is too deep to read: the same error, not "not valid JSON"
    body = json.dumps(graph([node("inp", "Input", shape=[4]), node("fc", "Linear", out_features=7),
                             node("out", "Output")], [("inp", "fc"), ("fc", "out")]))
    body = body.replace('"out_features": 7', '"out_features": ' + "[" * 5000 + "7" + "]" * 5000)
    for url in ("/api/graphs/report", "/api/export?format=python"):
        r = client.post(url, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, url
        assert r.json()["detail"][0]["message"] == "the graph is nested too deeply", url


def test_reports_never_queue_behind_torch(client: TestClient) -> None:
    """The editor asks for a report on every edit and a run check beside it. A check (or the training
    script, or an export) loads torch in its worker, seconds the first time; reports have workers of
    their own that never import it, so an edit's report cannot wait behind that."""
    g = graph([node("inp", "Input", shape=[1, 8, 8]), node("flat", "Flatten"), node("fc", "Linear", out_features=10),
               node("out", "Output")], [("inp", "flat"), ("flat", "fc"), ("fc", "out")])
    checked = client.post("/api/runs/check", json={"graph": g, "config": {"data": {"dataset": "digits"}}})
    assert checked.status_code == 200 and checked.json()["ok"], checked.text
    assert client.post("/api/graphs/script", json={"graph": g}).status_code == 200
    assert client.post("/api/export?format=torchscript", json=g).status_code == 200
    assert client.post("/api/graphs/report", json=g).json()["valid"]
    state = client.app.state.layerlab
    # asked with a builtin: a function of this module would import the module, and torch with it
    torch_loaded = "'torch' in __import__('sys').modules"
    assert state.torch_pool.call(eval, torch_loaded) is True
    assert state.cpu.call(eval, torch_loaded) is False  # the worker that made the report


# --- export: what building the weights would take is computed from the report, then capped ----


# 460 bytes of JSON: four copies of a 32768 → 32768 Linear, 4.3 G parameters, 16 GiB of weights to build
HUGE = graph([node("inp", "Input", shape=[32768]), node("b", "Block", repeat=4),
              node("fc", "Linear", "b", out_features=32768), node("head", "Linear", out_features=10),
              node("out", "Output")], [("inp", "b"), ("b", "head"), ("head", "out")])


def peak_rss_since_reset() -> int:
    """This process's peak resident memory (bytes) since the last ``reset_peak_rss``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def test_an_export_too_big_to_build_is_refused_from_the_report_before_building() -> None:
    import time

    from layerlab.export import DEFAULT_MAX_BUILD_BYTES, export_graph

    assert len(json.dumps(HUGE)) < 1024
    export_graph(graph([node("inp", "Input", shape=[4]), node("fc", "Linear", out_features=2),
                        node("out", "Output")], [("inp", "fc"), ("fc", "out")]), "torchscript")  # torch warm
    for fmt in ("torchscript", "onnx"):
        reset_peak_rss()
        before = peak_rss_since_reset()
        t0 = time.perf_counter()
        with pytest.raises(layerlab.GraphInvalidError) as info:
            export_graph(HUGE, fmt, max_build_bytes=DEFAULT_MAX_BUILD_BYTES)
        took = time.perf_counter() - t0
        assert took < 0.5, took
        assert peak_rss_since_reset() - before < 20 * 2**20  # nothing was built
        [err] = info.value.errors
        assert err.node == "fc"
        assert err.message == (
            f"{fmt} export builds the model: 4,295,426,058 parameters (16.00 GiB) and about 640.0 KiB of "
            "activations to trace it, above the limit of 32.0 MiB; the biggest layers: "
            "fc (Linear, 4 copies) 4,295,098,368, head (Linear) 327,690")
        assert "LAYERLAB_MAX_BUILD_BYTES" in err.suggestion
    assert b"nn.Linear(32768, 32768" in export_graph(HUGE, "python").content  # code builds nothing


def test_the_server_caps_exports_by_its_setting(tmp_path: Path, client: TestClient) -> None:
    r = client.post("/api/export?format=torchscript", json=HUGE)
    assert r.status_code == 422
    assert "4,295,426,058 parameters" in r.json()["detail"][0]["message"]
    assert client.post("/api/export?format=python", json=HUGE).status_code == 200
    mlp = graph([node("inp", "Input", shape=[64]), node("fc", "Linear", out_features=64), node("out", "Output")],
                [("inp", "fc"), ("fc", "out")])  # 4,160 parameters: 16,640 bytes + 512 of activations
    assert client.post("/api/export?format=torchscript", json=mlp).status_code == 200
    with TestClient(create_app(Settings(data_dir=tmp_path / "small", demo=False, max_build_bytes=17_000))) as small:
        r = small.post("/api/export?format=torchscript", json=mlp)
        assert r.status_code == 422
        assert "4,160 parameters (16.2 KiB) and about 0.5 KiB of activations" in r.json()["detail"][0]["message"]
        assert "above the limit of 16.6 KiB; the biggest layers: fc (Linear) 4,160" in r.json()["detail"][0]["message"]


# --- uploads: decompressed size from the headers, CSV streamed, classes capped ------------------


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def zip_bomb(nbytes: int) -> bytes:
    """An .npz whose x.npy is ``nbytes`` of zeros behind an honest .npy header: ~1,000× compression."""
    buf = io.BytesIO()
    rows = nbytes // (4 * 256)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("x.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (rows, 256)})
            zeros = bytes(1 << 22)
            for _ in range(rows * 256 * 4 // len(zeros)):
                member.write(zeros)
        zf.writestr("y.npy", _npy(np.zeros(rows, dtype=np.int64)))
    return buf.getvalue()


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def upload(client: TestClient, name: str, content: bytes) -> Any:
    return client.post("/api/datasets", files={"file": (name, content)})


def test_an_npz_zip_bomb_is_refused_from_its_headers(tmp_path: Path) -> None:
    bomb = zip_bomb(80 * 2**20)
    assert len(bomb) < 2**20
    limited = Settings(data_dir=tmp_path, demo=False, upload_limits=UploadLimits(max_expanded_bytes=32 * 2**20))
    with TestClient(create_app(limited)) as client:
        tracemalloc.start()
        try:
            r = upload(client, "bomb.npz", bomb)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        uploads = client.get("/api/datasets").json()["uploads"]
    assert r.status_code == 413
    declared = sum(m.file_size for m in zipfile.ZipFile(io.BytesIO(bomb)).infolist())
    assert r.json()["detail"] == (f"the archive decompresses to {declared / 2**20:,.1f} MiB, above the limit of "
                                  "32.0 MiB (LAYERLAB_MAX_DATASET_BYTES)")
    assert peak < 16 * 2**20  # the request and the app, never the decompressed arrays
    assert not any((tmp_path / "uploads").iterdir())
    assert uploads == []
    assert UploadLimits().max_expanded_bytes == 512 * 2**20  # the default


def test_an_npy_header_claiming_a_huge_shape_is_refused_before_numpy_allocates(client: TestClient) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2**40, 4)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.npy", header.getvalue() + bytes(64))
        zf.writestr("y.npy", _npy(np.zeros(2, dtype=np.int64)))
    r = upload(client, "liar.npz", buf.getvalue())
    assert r.status_code == 413
    assert r.json()["detail"].startswith("array 'x' [1099511627776, 4] takes 16,777,216.0 MiB in memory")


def test_the_dataset_limit_is_a_setting(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(4096, 64)).astype(np.float32)  # 1 MiB
    y = np.arange(4096) % 3
    small = Settings(data_dir=tmp_path, demo=False, upload_limits=UploadLimits(max_expanded_bytes=2**20))
    with TestClient(create_app(small)) as c:
        r = upload(c, "big.npz", npz_bytes(x=x, y=y))
        assert r.status_code == 413
        assert "above the limit of 1.0 MiB" in r.json()["detail"]
        assert upload(c, "ok.npz", npz_bytes(x=x[:1024], y=y[:1024])).status_code == 201


def test_a_csv_is_parsed_in_bounded_memory_and_refused_past_the_limit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = 10_000
    x = rng.normal(size=(rows, 20)).round(4)
    header = ",".join(f"f{j}" for j in range(20)) + ",label\n"
    text = (header + "\n".join(",".join(map(str, r)) + f",c{i % 5}" for i, r in enumerate(x))).encode()  # ~1 MB
    small = Settings(data_dir=tmp_path, demo=False, upload_limits=UploadLimits(max_expanded_bytes=2**18))
    with TestClient(create_app(small)) as c:
        r = upload(c, "big.csv", text)
        assert r.status_code == 413
        assert "rows × 20 features so far) takes" in r.json()["detail"]
    with TestClient(create_app(Settings(data_dir=tmp_path / "ok", demo=False))) as c:
        r = upload(c, "ok.csv", text)
        assert r.status_code == 201, r.json()
        info = r.json()
        assert info["samples"] == rows and info["sample_shape"] == [20]
        assert info["class_names"] == ["c0", "c1", "c2", "c3", "c4"]
    path = tmp_path / "ok.csv"
    path.write_bytes(text)
    tracemalloc.start()
    try:
        ds = load_upload(UploadRef(path=str(path)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(ds.x, x.astype(np.float32))
    # the float32 features about three times over (blocks, their concatenation, rows being parsed),
    # not ~50 bytes of Python string per cell: reading every row first took 15 MB here
    assert peak < 4 * ds.x.nbytes, peak


def test_the_number_of_classes_is_capped(client: TestClient) -> None:
    x = np.zeros((3000, 2), dtype=np.float32)
    r = upload(client, "ids.npz", npz_bytes(x=x, y=np.arange(3000)))
    assert r.status_code == 422
    [err] = r.json()["detail"]
    assert err["message"] == ("upload 'upload': classification with 3,000 distinct labels is above the limit of "
                              "1,000 classes (LAYERLAB_MAX_CLASSES); for a continuous target set task to 'regression'")
    csv_text = "a,label\n" + "\n".join(f"{i},name{i}" for i in range(3000))
    r = upload(client, "names.csv", csv_text.encode())
    assert r.status_code == 422
    assert "more than 1,000 distinct labels" in r.json()["detail"][0]["message"]
    assert client.get("/api/datasets").json()["uploads"] == []
