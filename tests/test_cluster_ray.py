"""The Ray executor on a local Ray cluster that declares one fake GPU (no CUDA needed).

Ray schedules a ``num_gpus=1`` actor on the fake GPU while torch trains on the CPU, so the GPU
slot logic (one run per GPU, the rest queued with their position) is exercised for real. Ray is
a test dependency here (the Makefile installs ``.[dev,cluster]``): without it these tests fail,
they do not skip.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from helpers import chain, started_event
from layerlab.api import Settings, create_app
from layerlab.cluster import make_executor
from layerlab.cluster.ray_executor import RayExecutor
from layerlab.train import LocalExecutor, is_terminal, read_weights

GRAPH = chain([2], ("Linear", {"out_features": 16}), ("ReLU", {}), ("Linear", {"out_features": 4}))
CONFIG: dict[str, Any] = {
    "data": {"dataset": "blobs", "n_samples": 600, "batch_size": 32},
    "epochs": 2,
    "layer_stats_every": 0,
    "step_event_interval_s": 0.0,
}
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, object_store_memory=100 * 1024 * 1024,
             namespace="layerlab-tests", log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def executor(cluster: None, tmp_path: Path) -> Iterator[RayExecutor]:
    ex = RayExecutor(tmp_path / "runs", poll_s=0.5)
    try:
        yield ex
    finally:
        ex.shutdown(timeout=30)


def wait_for(ex: RayExecutor, run_id: str, kind: str, timeout: float = TIMEOUT) -> Any:
    """Block until ``run_id`` has an event of type ``kind`` (seen before or after the call)."""
    inbox: queue.Queue[Any] = queue.Queue()
    unsubscribe = ex.subscribe(inbox.put, run_id=run_id, replay=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            event = inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            if event.type == kind:
                return event
            if is_terminal(event):
                raise AssertionError(f"run {run_id} ended with {event!r} before any {kind}")
    except queue.Empty:
        raise AssertionError(f"no {kind} from run {run_id} within {timeout} s: {ex.history(run_id)}") from None
    finally:
        unsubscribe()


def released_eventually(ex: RayExecutor, run_id: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while ex.actor(run_id) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def gpus_free_eventually(expected: float, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ray.available_resources().get("GPU", 0.0) == expected:
            return True
        time.sleep(0.2)
    return False


def test_a_run_streams_its_events_from_its_actor(executor: RayExecutor, tmp_path: Path) -> None:
    executor.submit("first", GRAPH, CONFIG)
    events = list(executor.events("first", timeout=TIMEOUT))
    types = [e.type for e in events]
    assert [t for t in types if t != "run_starting"][0] == "run_started", types
    assert types[-1] == "run_finished", events[-1]
    assert [e.seq for e in events] == list(range(len(events)))
    assert types.count("epoch") == 2
    steps = [p for e in events if e.type == "step" for p in e.points]
    assert [s for s, _ in steps] == list(range(1, started_event(events).total_steps + 1)), "every step's loss arrives"
    assert started_event(events).device == "cpu", "the fake GPU has no CUDA behind it: torch trains on the CPU"
    finished = events[-1]
    assert Path(finished.checkpoint).is_relative_to(tmp_path / "runs" / "first")
    assert read_weights(finished.checkpoint), "the actor wrote its checkpoint where the API reads it"
    assert executor.state("first") == "finished"
    assert released_eventually(executor, "first"), "the actor is released when the run ends"
    assert gpus_free_eventually(1.0)


def test_runs_queue_while_the_gpu_is_busy(executor: RayExecutor) -> None:
    executor.submit("holder", GRAPH, {**CONFIG, "epochs": 100})
    executor.pause("holder")  # holds the fake GPU until stopped
    wait_for(executor, "holder", "run_paused")
    where = ray.get(executor.actor("holder").where.remote(), timeout=TIMEOUT)
    assert where["gpu_ids"] == ["0"], "the run's actor holds the GPU"

    for run_id in ("waiter", "dropped", "killed"):
        executor.submit(run_id, GRAPH, CONFIG)
    assert [wait_for(executor, r, "run_queued").position for r in ("waiter", "dropped", "killed")] == [1, 2, 3]
    assert executor.state("waiter") == "queued"
    assert executor.actor("waiter") is None
    time.sleep(1.5)  # several scheduler ticks: still no free GPU, so still queued
    assert executor.state("waiter") == "queued"

    # Queued runs stop and die without ever starting; the ones behind move up.
    executor.stop("dropped")
    assert [e.type for e in executor.history("dropped")] == ["run_queued", "run_stopped"]
    assert executor.history("killed")[-1].position == 2
    executor.kill("killed")
    assert executor.history("killed")[-1].reason == "killed"
    assert executor.history("waiter")[-1].position == 1

    executor.stop("holder")  # a paused run stops too, and keeps a checkpoint
    end = list(executor.events("holder", timeout=TIMEOUT))[-1]
    assert end.type == "run_stopped"
    assert read_weights(end.checkpoint)

    waiter = list(executor.events("waiter", timeout=TIMEOUT))  # the freed GPU goes to the first in line
    assert [e.type for e in waiter if e.type != "run_starting"][:2] == ["run_queued", "run_started"]
    assert waiter[-1].type == "run_finished"

    # The stopped run resumes from its checkpoint under the same id; its seq goes on.
    last_seq = executor.history("holder")[-1].seq
    executor.submit("holder", GRAPH, CONFIG, resume_from=end.checkpoint)
    resumed = list(executor.events("holder", timeout=TIMEOUT))  # the new attempt's events
    assert [e.seq for e in resumed] == list(range(last_seq + 1, last_seq + 1 + len(resumed)))
    started = next(e for e in resumed if e.type not in ("run_queued", "run_starting"))  # queued while the waiter lets go
    assert started.type == "run_started"
    assert resumed[-1].type == "run_finished"


def test_a_dead_actor_fails_its_run_and_frees_the_gpu(executor: RayExecutor) -> None:
    executor.submit("victim", GRAPH, CONFIG)
    executor.pause("victim")
    wait_for(executor, "victim", "run_paused")
    executor.submit("next", GRAPH, CONFIG)
    executor.pause("next")  # a queued run pauses as soon as it starts
    wait_for(executor, "next", "run_queued")

    ray.kill(executor.actor("victim"), no_restart=True)  # as if its worker or node were lost
    failed = list(executor.events("victim", timeout=TIMEOUT))[-1]
    assert failed.type == "run_failed"
    assert "died" in failed.reason, failed.reason
    assert failed.hint
    assert executor.state("victim") == "failed"

    wait_for(executor, "next", "run_paused")  # the freed GPU went to the queued run
    executor.kill("next")
    killed = executor.history("next")[-1]
    assert killed.type == "run_failed" and killed.reason == "killed"
    assert executor.state("next") == "failed"
    assert sum(1 for e in executor.history("next") if is_terminal(e)) == 1
    assert gpus_free_eventually(1.0)


def test_data_parallel_run_on_ray(executor: RayExecutor) -> None:
    """devices=2 on the CPU: one actor with 2 CPUs runs two gloo DDP processes. Pause, resume and
    stop reach rank 0 through the actor and every rank through rank 0's broadcast."""
    executor.submit("ddp", GRAPH, {**CONFIG, "epochs": 100, "device": "cpu", "devices": 2})
    executor.pause("ddp")
    started = wait_for(executor, "ddp", "run_started")
    assert "x2 (ddp, gloo)" in started.device
    paused = wait_for(executor, "ddp", "run_paused")
    executor.resume("ddp")
    wait_for(executor, "ddp", "run_resumed")
    step = wait_for(executor, "ddp", "step")
    assert step.step > paused.step
    executor.stop("ddp")
    end = list(executor.events("ddp", timeout=TIMEOUT))[-1]
    assert end.type == "run_stopped", end
    assert 0 < end.step < 100 * started.steps_per_epoch
    assert read_weights(end.checkpoint), "rank 0 wrote the checkpoint"


def test_the_api_trains_through_ray(cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What compose runs: the server picks the Ray executor from LAYERLAB_EXECUTOR and streams
    the actor's events to a websocket like any other run's."""
    monkeypatch.setenv("LAYERLAB_EXECUTOR", "ray")
    quick = {"max_steps": 8, "epochs": 1, "layer_stats_every": 0, "data": {"dataset": "digits", "batch_size": 32}}
    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        project = client.get("/api/projects").json()[0]["id"]
        response = client.post("/api/runs", json={"project_id": project, "config": quick})
        assert response.status_code == 202, response.text
        run_id = response.json()["id"]
        events = []
        with client.websocket_connect(f"/api/runs/{run_id}/events?after=-1") as ws:
            while True:
                try:
                    events.append(ws.receive_json())
                except WebSocketDisconnect:
                    break
        executor = client.app.state.layerlab.runs.executor
        assert isinstance(executor, RayExecutor)
        assert executor.history(run_id)[-1].type == "run_finished"
    types = [e["type"] for e in events]
    assert [t for t in types if t != "run_starting"][0] == "run_started" and types[-1] == "run_finished", types
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert ray.is_initialized(), "the server joined the running Ray and leaves it running"


def test_make_executor_chooses_by_environment(cluster: None, tmp_path: Path) -> None:
    local = make_executor({"LAYERLAB_EXECUTOR": "local"}, runs_dir=tmp_path)
    assert isinstance(local, LocalExecutor)
    local.shutdown()
    assert isinstance(make_executor({}, runs_dir=tmp_path), LocalExecutor), "local is the default"
    env = {"LAYERLAB_EXECUTOR": "ray", "LAYERLAB_DATA_DIR": str(tmp_path), "LAYERLAB_RAY_CPUS_PER_RUN": "0.5"}
    remote = make_executor(env)  # Ray is already initialized here, so no address is needed
    try:
        assert isinstance(remote, RayExecutor)
        assert remote.runs_dir == (tmp_path / "runs").resolve()
        assert remote.cpus_per_run == 0.5
    finally:
        remote.shutdown()
    assert ray.is_initialized(), "an executor that joined an existing Ray leaves it running"
    with pytest.raises(ValueError, match="LAYERLAB_EXECUTOR"):
        make_executor({"LAYERLAB_EXECUTOR": "kubernetes"}, runs_dir=tmp_path)


def test_the_core_does_not_import_ray() -> None:
    code = (
        "import sys, layerlab, layerlab.train, layerlab.cluster, layerlab.api.app\n"
        "from layerlab.cluster import make_executor\n"
        "make_executor({'LAYERLAB_EXECUTOR': 'local'}, runs_dir='unused').shutdown()\n"
        "assert 'ray' not in sys.modules, sorted(m for m in sys.modules if m.startswith('ray'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
