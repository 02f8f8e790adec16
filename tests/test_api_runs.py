"""Runs through the real LocalExecutor: each run trains in its own spawned process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from safetensors.torch import load
from starlette.websockets import WebSocketDisconnect

from layerlab.api import Settings, create_app

pytestmark = pytest.mark.slow

# Tiny on purpose: the cost is the worker's start-up, not the training.
QUICK = {"max_steps": 12, "epochs": 1, "layer_stats_every": 5, "data": {"dataset": "digits", "batch_size": 32}}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, database: str):
    data = tmp_path_factory.mktemp("server")
    with TestClient(create_app(Settings(data_dir=data, max_concurrent_runs=3))) as c:
        yield c


@pytest.fixture(scope="module")
def demo(client: TestClient) -> str:
    return client.get("/api/projects").json()[0]["id"]


def watch(client: TestClient, run_id: str, after: int = -1) -> list[dict[str, Any]]:
    events = []
    with client.websocket_connect(f"/api/runs/{run_id}/events?after={after}") as ws:
        while True:
            try:
                events.append(ws.receive_json())
            except WebSocketDisconnect:
                return events


def start(client: TestClient, project: str, config: dict[str, Any]) -> str:
    r = client.post("/api/runs", json={"project_id": project, "config": config})
    assert r.status_code == 202, r.text
    return r.json()["id"]


@pytest.fixture(scope="module")
def runs(client: TestClient, demo: str) -> dict[str, str]:
    """Three runs at once (three worker slots): one that trains, one that fails in its worker
    (no such device), and a long one to pause, resume and stop."""
    return {
        "ok": start(client, demo, QUICK),
        "bad": start(client, demo, {**QUICK, "device": "cuda:63"}),  # fails in its worker
        "long": start(client, demo, {"epochs": 500, "data": {"dataset": "digits", "batch_size": 16}}),
    }


@pytest.fixture(scope="module")
def finished_run(client: TestClient, runs: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    return runs["ok"], watch(client, runs["ok"])


def test_demo_trains_and_streams_every_event(client: TestClient, finished_run: tuple) -> None:
    run_id, events = finished_run
    types = [e["type"] for e in events]
    started = types.index("run_started")
    assert set(types[:started]) <= {"run_starting"} and "run_starting" in types[:started], types
    assert types[-1] == "run_finished", types
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert "step" in types and "checkpoint" in types and "layer_stats" in types
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "finished" and run["step"] == 12 and run["has_checkpoint"]


def test_metrics_match_the_stream(client: TestClient, finished_run: tuple) -> None:
    run_id, events = finished_run
    metrics = client.get(f"/api/runs/{run_id}/metrics").json()
    streamed = [p for e in events if e["type"] == "step" for p in e["points"]]
    assert metrics["steps"] == streamed and [p[0] for p in streamed] == list(range(1, 13))
    assert metrics["last_seq"] == [e["seq"] for e in events if e["type"] in ("step", "epoch", "layer_snapshot")][-1]


def test_metrics_carry_the_run_header_and_step_times(client: TestClient, finished_run: tuple) -> None:
    run_id, events = finished_run
    metrics = client.get(f"/api/runs/{run_id}/metrics").json()
    started = next(e for e in events if e["type"] == "run_started")
    assert metrics["started"] == started
    assert started["device"] == "cpu" and started["device_name"] is None and started["threads"] >= 1
    assert metrics["times"] == [[e["step"], e["time"]] for e in events if e["type"] == "step"]
    assert metrics["layer_stats"] == [e for e in events if e["type"] == "layer_stats"] != []
    snapshots = [e for e in events if e["type"] == "layer_snapshot"]
    assert metrics["snapshot"] == snapshots[-1] and {v["node"] for v in snapshots[-1]["layers"]} >= {"conv1", "fc"}


def test_checkpoint_is_safetensors_of_the_graph(client: TestClient, finished_run: tuple) -> None:
    run_id, _ = finished_run
    r = client.get(f"/api/runs/{run_id}/checkpoint")
    assert r.status_code == 200
    weights = load(r.content)
    assert weights["conv1.weight"].shape == (8, 1, 3, 3) and weights["fc.weight"].shape == (10, 128)


def test_finetune_starts_from_the_weights(client: TestClient, finished_run: tuple) -> None:
    run_id, _ = finished_run
    r = client.post(f"/api/runs/{run_id}/finetune", json={"config": {**QUICK, "max_steps": 3}})
    assert r.status_code == 202, r.text
    child = r.json()["id"]
    events = watch(client, child)
    assert events[-1]["type"] == "run_finished", events[-1]
    assert client.get(f"/api/runs/{child}").json()["parent_run_id"] == run_id


def test_pause_resume_stop_a_live_run(client: TestClient, runs: dict[str, str]) -> None:
    run_id = runs["long"]
    seen: list[str] = []
    with client.websocket_connect(f"/api/runs/{run_id}/events") as ws:
        def until(kind: str) -> dict[str, Any]:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                event = ws.receive_json()
                seen.append(event["type"])
                if event["type"] == kind:
                    return event
            raise AssertionError(f"no {kind}: {seen}")

        until("step")
        assert client.post(f"/api/runs/{run_id}/pause").status_code == 202
        until("run_paused")
        assert client.get(f"/api/runs/{run_id}").json()["status"] == "paused"
        assert client.post(f"/api/runs/{run_id}/resume").status_code == 202
        until("run_resumed")
        assert client.post(f"/api/runs/{run_id}/stop").status_code == 202
        stopped = until("run_stopped")
    assert stopped["checkpoint"]
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "stopped" and run["has_checkpoint"]
    assert client.delete(f"/api/runs/{run_id}").status_code == 204


def test_setup_failure_is_a_failed_run_with_a_hint(client: TestClient, runs: dict[str, str]) -> None:
    run_id = runs["bad"]
    events = watch(client, run_id)
    assert events[-1]["type"] == "run_failed"
    assert "cuda:63" in events[-1]["reason"] and events[-1]["hint"]
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "failed" and run["error"] == events[-1]["reason"]


def test_run_folders_stay_inside_the_data_dir(client: TestClient) -> None:
    data_dir = client.app.state.layerlab.settings.data_dir
    runs = [r["id"] for r in client.get("/api/runs").json()]
    folders = {p.name for p in Path(data_dir, "runs").iterdir()}
    assert folders <= set(runs)


def test_a_stopped_run_continues_where_it_stopped(client: TestClient, demo: str) -> None:
    """Stop → continue: the same run id, steps and seq go on from where the run stopped."""
    run_id = start(client, demo, {"epochs": 500, "data": {"dataset": "digits", "batch_size": 16}})
    assert client.post(f"/api/runs/{run_id}/continue").status_code == 409  # not stopped yet
    with client.websocket_connect(f"/api/runs/{run_id}/events") as ws:
        while ws.receive_json()["type"] != "step":
            pass
        assert client.post(f"/api/runs/{run_id}/stop").status_code == 202
        while (stopped := ws.receive_json())["type"] != "run_stopped":
            pass
    r = client.post(f"/api/runs/{run_id}/continue")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    with client.websocket_connect(f"/api/runs/{run_id}/events?after={stopped['seq']}") as ws:
        while (started := ws.receive_json())["type"] != "run_started":
            pass
        while (step := ws.receive_json())["type"] != "step":
            pass
        assert client.post(f"/api/runs/{run_id}/stop").status_code == 202
        while ws.receive_json()["type"] != "run_stopped":
            pass
    assert started["seq"] > stopped["seq"]
    assert started["start_step"] == stopped["step"]  # resumed from the checkpoint, not from 0
    assert step["points"][0][0] > stopped["step"]
    history = client.get(f"/api/runs/{run_id}/events/history?limit=10000").json()["events"]
    seqs = [e["seq"] for e in history]
    assert seqs == sorted(set(seqs)), "one run, one monotonic seq across the stop"
    assert [e["type"] for e in history].count("run_started") == 2
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "stopped"
    assert client.delete(f"/api/runs/{run_id}").status_code == 204


def test_a_run_too_big_for_this_machine_is_refused_with_the_estimate(client: TestClient) -> None:
    # Linear layers of ~2.1e9 parameters each (just under the per-layer limit): ~270 GiB with Adam.
    wide = [("x", "Input", {"shape": [1, 8, 8]}), ("flat", "Flatten", {})]
    wide += [(f"wide{i}", "Linear", {"out_features": (1 << 20) if i % 2 == 0 else 2047}) for i in range(9)]
    wide += [("head", "Linear", {"out_features": 10}), ("y", "Output", {})]
    graph = {"format": "layerlab.graph/1", "nodes": [{"id": i, "op": op, "params": p} for i, op, p in wide],
             "edges": [{"source": a[0], "target": b[0]} for a, b in zip(wide, wide[1:])]}
    project = client.post("/api/projects", json={"name": "too big", "graph": graph}).json()["id"]
    r = client.post("/api/runs", json={"project_id": project, "config": {"epochs": 1}})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["field"] == "config.data.batch_size"
    assert error["message"].startswith("this run needs about 2") and "GiB available" in error["message"]
    assert "the biggest parts: adamw optimizer state 1" in error["message"], error["message"]  # the default
    assert "smaller data.batch_size" in error["suggestion"] and "bf16" in error["suggestion"]
    assert all(run["project_id"] != project for run in client.get("/api/runs").json()), "no run was made"


def test_check_answers_what_the_start_answers(client: TestClient, demo: str) -> None:
    graph = client.get(f"/api/projects/{demo}").json()["graph"]
    runs_before = len(client.get("/api/runs").json())
    fits = client.post("/api/runs/check", json={"graph": graph, "config": QUICK})
    assert fits.status_code == 200, fits.text
    assert fits.json() == {"ok": True, "problems": []}

    iris = {**QUICK, "data": {"dataset": "iris", "batch_size": 32}}  # 4 features for a 1×8×8 Input
    checked = client.post("/api/runs/check", json={"graph": graph, "config": iris})
    assert checked.status_code == 200, checked.text
    assert checked.json()["ok"] is False
    (problem,) = checked.json()["problems"]
    input_node = next(n["id"] for n in graph["nodes"] if n["op"] == "Input")
    assert problem["field"] == "config.data" and problem["node"] == input_node
    assert problem["message"] == (f"{input_node}: the graph takes inputs of shape (1, 8, 8) but dataset 'iris' "
                                  "gives samples of shape (4)")
    refused = client.post("/api/runs", json={"project_id": demo, "config": iris})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == checked.json()["problems"]  # the same words, field and hint
    # Without a graph, the project's latest version is checked (what Train would run).
    assert client.post("/api/runs/check", json={"project_id": demo, "config": iris}).json() == checked.json()
    assert len(client.get("/api/runs").json()) == runs_before, "checking makes no run"


def test_check_of_nothing_names_what_is_missing(client: TestClient) -> None:
    r = client.post("/api/runs/check", json={"config": QUICK})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["field"] == "graph"
    assert client.post("/api/runs/check", json={"project_id": "0" * 32}).status_code == 404
