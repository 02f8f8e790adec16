"""Runs, event storage and websocket streaming, driven by a scripted executor (fast and exact).

The real LocalExecutor is exercised in test_api_runs.py; here the executor is a stand-in that
emits the same event models when the test says so, from the test's own thread.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from layerlab.api import Settings, create_app
from layerlab.api.db import Database, Run
from layerlab.api.demo import demo_graph
from layerlab.api.streaming import Watcher
from layerlab.train.events import (
    CheckpointEvent,
    EpochEvent,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStopped,
    StepEvent,
)


class ScriptedExecutor:
    """The Executor interface; events happen only when the test calls ``emit``."""

    def __init__(self, runs_dir: Path, max_concurrent: int) -> None:
        self.runs_dir = runs_dir
        self.subscribers: list[Any] = []
        self.seq: dict[str, int] = {}
        self.submitted: list[dict[str, Any]] = []
        self.closed = False

    def subscribe(self, callback: Any, *, run_id: str | None = None, replay: bool = False) -> Any:
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)

    def submit(self, run_id: str, graph: dict, config: dict, *, resume_from: str | None = None,
               init_from: str | None = None, start_seq: int | None = None, spec: Any = None) -> None:
        self.seq[run_id] = start_seq or 0
        self.submitted.append({"run_id": run_id, "graph": graph, "config": config, "init_from": init_from})

    def emit(self, cls: type, run_id: str, **fields: Any) -> None:
        event = cls(run_id=run_id, seq=self.seq[run_id], **fields)
        self.seq[run_id] += 1
        for callback in list(self.subscribers):
            callback(event)

    def step(self, run_id: str, step: int) -> None:
        self.emit(StepEvent, run_id, step=step, epoch=1, points=[(step, 1.0 / step)], lr=0.01, samples_per_s=1e3)

    def finish(self, run_id: str, step: int = 10) -> None:
        self.emit(RunFinished, run_id, step=step, epoch=1, reason="completed", train_loss=0.1, val_loss=0.2,
                  val_accuracy=0.9, checkpoint=None, seconds=1.0)

    def stop(self, run_id: str) -> None:
        self.emit(RunStopped, run_id, step=0, epoch=0, checkpoint=None)

    def pause(self, run_id: str) -> None:
        self.emit(RunPaused, run_id, step=0)

    def resume(self, run_id: str) -> None:
        self.emit(RunResumed, run_id, step=0)

    def kill(self, run_id: str) -> None:
        self.emit(RunFailed, run_id, reason="killed")

    def shutdown(self, *, timeout: float = 10.0) -> None:
        self.closed = True


class Harness:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.project = client.post("/api/projects", json={"name": "p", "graph": demo_graph()}).json()["id"]

    @property
    def executor(self) -> ScriptedExecutor:
        return self.client.app.state.layerlab.runs.executor

    @property
    def writer(self) -> Any:
        return self.client.app.state.layerlab.writer

    def start(self, **config: Any) -> str:
        r = self.client.post("/api/runs", json={"project_id": self.project, "config": {"epochs": 1, **config}})
        assert r.status_code == 202, r.text
        return r.json()["id"]

    def on_loop(self, fn: Any) -> None:
        """Run ``fn`` inside the app's event loop (everything it publishes lands in one go)."""
        self.client.portal.call(fn)  # type: ignore[union-attr]


def make_client(tmp_path: Path, **settings: Any) -> TestClient:
    settings.setdefault("demo", False)
    settings.setdefault("event_flush_interval_s", 0.05)
    return TestClient(create_app(Settings(data_dir=tmp_path, **settings), executor_factory=ScriptedExecutor))


@pytest.fixture
def h(tmp_path: Path):
    with make_client(tmp_path) as client:
        yield Harness(client)


def receive_until_closed(ws: Any) -> list[dict[str, Any]]:
    out = []
    while True:
        try:
            out.append(ws.receive_json())
        except WebSocketDisconnect:
            return out


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


# --- streaming ---------------------------------------------------------------------------------


def test_live_events_then_replay_after_reconnect(h: Harness) -> None:
    run_id = h.start()
    with h.client.websocket_connect(f"/api/runs/{run_id}/events") as ws:
        for step in (1, 2, 3):
            h.executor.step(run_id, step)
        got = [ws.receive_json() for _ in range(3)]
        assert [(e["seq"], e["type"], e["step"]) for e in got] == [(0, "step", 1), (1, "step", 2), (2, "step", 3)]
        assert got[0]["run_id"] == run_id and got[0]["points"] == [[1, 1.0]]
    # While nobody watches, the run goes on.
    for step in (4, 5):
        h.executor.step(run_id, step)
    with h.client.websocket_connect(f"/api/runs/{run_id}/events?after=2") as ws:
        assert [ws.receive_json()["seq"] for _ in range(2)] == [3, 4]
        h.executor.step(run_id, 6)
        h.executor.finish(run_id)
        rest = receive_until_closed(ws)  # the socket closes after the terminal event
    assert [(e["seq"], e["type"]) for e in rest] == [(5, "step"), (6, "run_finished")]
    # A finished run replays in full and closes.
    with h.client.websocket_connect(f"/api/runs/{run_id}/events") as ws:
        assert [e["seq"] for e in receive_until_closed(ws)] == list(range(7))
    # ... also when the client has everything already, or claims more than there is.
    for after in (4, 6, 50):
        with h.client.websocket_connect(f"/api/runs/{run_id}/events?after={after}") as ws:
            assert [e["seq"] for e in receive_until_closed(ws)] == list(range(after + 1, 7)), after


def test_two_watchers_get_every_event(h: Harness) -> None:
    run_id = h.start()
    h.executor.step(run_id, 1)
    with h.client.websocket_connect(f"/api/runs/{run_id}/events") as a, \
            h.client.websocket_connect(f"/api/runs/{run_id}/events") as b:
        for step in range(2, 12):
            h.executor.step(run_id, step)
        h.executor.finish(run_id)
        seen_a, seen_b = receive_until_closed(a), receive_until_closed(b)
    assert [e["seq"] for e in seen_a] == list(range(12))
    assert seen_a == seen_b


def test_slow_watcher_gets_resync_and_loses_nothing_on_reconnect(tmp_path: Path) -> None:
    with make_client(tmp_path, ws_queue_size=8) as client:
        h = Harness(client)
        run_id = h.start()
        with client.websocket_connect(f"/api/runs/{run_id}/events") as slow, \
                client.websocket_connect(f"/api/runs/{run_id}/events") as other:
            h.executor.step(run_id, 1)
            assert slow.receive_json()["seq"] == 0 and other.receive_json()["seq"] == 0
            # 30 events published in one loop turn: more than a watcher's queue holds.
            h.on_loop(lambda: [h.executor.step(run_id, s) for s in range(2, 32)])
            messages = receive_until_closed(slow)
            assert messages[-1] == {"type": "resync", "run_id": run_id, "after": 0}
        with client.websocket_connect(f"/api/runs/{run_id}/events?after=0") as again:
            h.executor.finish(run_id)
            assert [e["seq"] for e in receive_until_closed(again)] == list(range(1, 32))


def test_watcher_queue_overflow_unit() -> None:
    import asyncio

    async def scenario() -> list[tuple[int, str]]:
        w = Watcher(maxsize=3)
        for i in range(5):
            w.offer((i, str(i)))
        return [w.queue.get_nowait() for _ in range(w.queue.qsize())]

    assert asyncio.run(scenario()) == [Watcher.RESYNC]


def test_status_websocket_reports_changes(h: Harness) -> None:
    with h.client.websocket_connect("/api/events") as ws:
        run_id = h.start()
        assert ws.receive_json() == {"type": "run_status", "run_id": run_id, "project_id": h.project,
                                     "status": "queued", "step": 0, "epoch": 0}
        h.executor.step(run_id, 1)  # no status change, no message
        assert h.client.post(f"/api/runs/{run_id}/pause").status_code == 202
        message = ws.receive_json()
        assert (message["status"], message["seq"]) == ("paused", 1)
        h.executor.stop(run_id)
        assert ws.receive_json()["status"] == "stopped"
        assert h.client.delete(f"/api/runs/{run_id}").status_code == 204
        assert ws.receive_json() == {"type": "run_deleted", "run_id": run_id}


def test_unknown_run_websocket_closes(h: Harness) -> None:
    with pytest.raises(WebSocketDisconnect) as info, h.client.websocket_connect("/api/runs/nope/events") as ws:
        ws.receive_json()
    assert info.value.code == 4404


def test_websocket_token_and_origin(tmp_path: Path) -> None:
    with make_client(tmp_path, token="t0k") as client:
        for url, headers in [
            ("/api/events", {}),
            ("/api/events?token=bad", {}),
            ("/api/events?token=t0k", {"Origin": "https://evil.example"}),
        ]:
            with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect(url, headers=headers) as ws:
                ws.receive_json()
            assert info.value.code == 1008
        with client.websocket_connect("/api/events?token=t0k", headers={"Origin": "http://testserver"}):
            pass
        with client.websocket_connect("/api/events", headers={"Authorization": "Bearer t0k"}):
            pass


# --- storage -------------------------------------------------------------------------------------


def test_events_are_written_in_batches(h: Harness) -> None:
    run_id = h.start()
    before = h.writer.batches_written
    h.on_loop(lambda: [h.executor.step(run_id, s) for s in range(1, 301)])
    h.executor.finish(run_id, step=300)
    wait_for(lambda: not h.writer.pending_for(run_id))
    assert h.writer.batches_written - before <= 10
    page = h.client.get(f"/api/runs/{run_id}/events/history?after=-1&limit=1000").json()
    assert [e["seq"] for e in page["events"]] == list(range(301))
    assert page["more"] is False


def test_metrics_history_and_event_pages(h: Harness) -> None:
    run_id = h.start()
    for step in range(1, 6):
        h.executor.step(run_id, step)
    h.executor.emit(EpochEvent, run_id, epoch=1, step=5, train_loss=0.5, train_accuracy=0.8, val_loss=0.6,
                    val_accuracy=0.7, lr=0.01, seconds=0.1)
    metrics = h.client.get(f"/api/runs/{run_id}/metrics").json()  # buffered events count too
    assert metrics["steps"] == [[s, 1.0 / s] for s in range(1, 6)]
    assert metrics["epochs"][0]["val_accuracy"] == 0.7 and metrics["last_seq"] == 5
    page = h.client.get(f"/api/runs/{run_id}/events/history?after=1&limit=2").json()
    assert [e["seq"] for e in page["events"]] == [2, 3] and page["more"] is True and page["next_after"] == 3
    run = h.client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "queued" and run["last_seq"] == 5
    wait_for(lambda: h.client.get(f"/api/runs/{run_id}").json()["val_loss"] == 0.6)


def test_metrics_are_one_moment_even_when_events_arrive_while_they_are_read(h: Harness) -> None:
    """The page takes the run's status from /metrics and streams what follows last_seq. An event that
    arrives while /metrics reads the run is left to the stream: counted in last_seq beside an older
    status, a run_started would be skipped by the stream and the page would stay "queued"."""
    run_id = h.start()
    h.executor.step(run_id, 1)
    manager = h.client.app.state.layerlab.runs
    history = manager.history

    def events_arrive_meanwhile(*args: Any, **kwargs: Any) -> Any:
        manager.history = history
        h.executor.step(run_id, 2)  # the executor's thread, between reading the run and its history
        h.executor.pause(run_id)
        return history(*args, **kwargs)

    manager.history = events_arrive_meanwhile
    metrics = h.client.get(f"/api/runs/{run_id}/metrics").json()
    assert (metrics["status"], metrics["last_seq"], metrics["steps"]) == ("queued", 0, [[1, 1.0]])
    with h.client.websocket_connect(f"/api/runs/{run_id}/events?after={metrics['last_seq']}") as ws:
        got = [ws.receive_json() for _ in range(2)]
    assert [(e["seq"], e["type"]) for e in got] == [(1, "step"), (2, "run_paused")]
    again = h.client.get(f"/api/runs/{run_id}/metrics").json()
    assert (again["status"], again["last_seq"], again["steps"]) == ("paused", 1, [[1, 1.0], [2, 0.5]])


# --- run endpoints -------------------------------------------------------------------------------


def test_run_controls_and_conflicts(h: Harness) -> None:
    run_id = h.start()
    assert h.client.post(f"/api/runs/{run_id}/resume").json() == {"detail": "run is not paused"}
    assert h.client.delete(f"/api/runs/{run_id}").json() == {"detail": "run is active"}
    assert h.client.post(f"/api/runs/{run_id}/pause").status_code == 202
    assert h.client.get(f"/api/runs/{run_id}").json()["status"] == "paused"
    assert h.client.post(f"/api/runs/{run_id}/pause").json() == {"detail": "run is not running"}
    assert h.client.post(f"/api/runs/{run_id}/resume").status_code == 202
    assert h.client.post(f"/api/runs/{run_id}/stop").status_code == 202
    assert h.client.get(f"/api/runs/{run_id}").json()["status"] == "stopped"
    assert h.client.post(f"/api/runs/{run_id}/stop").status_code == 409
    assert h.client.post(f"/api/runs/{run_id}/kill").json() == {"detail": "run is not active"}
    other = h.start()
    assert h.client.post(f"/api/runs/{other}/kill").status_code == 202
    assert h.client.get(f"/api/runs/{other}").json()["error"] == "killed"
    assert {r["id"] for r in h.client.get(f"/api/runs?project_id={h.project}").json()} == {run_id, other}
    assert h.client.delete(f"/api/runs/{run_id}").status_code == 204
    assert h.client.get(f"/api/runs/{run_id}").json() == {"detail": "run not found"}
    for path in ("", "/metrics", "/checkpoint", "/events/history"):
        assert h.client.get(f"/api/runs/nope{path}").status_code == 404


def test_project_with_active_run_cannot_be_deleted(h: Harness) -> None:
    run_id = h.start()
    assert h.client.delete(f"/api/projects/{h.project}").json() == {"detail": "project has active runs"}
    h.executor.finish(run_id)
    assert h.client.delete(f"/api/projects/{h.project}").status_code == 204
    assert h.client.get(f"/api/runs/{run_id}").json()["project_id"] is None


def test_create_run_validates_graph_config_and_references(h: Harness) -> None:
    r = h.client.post("/api/runs", json={"project_id": "nope"})
    assert r.json() == {"detail": "project not found"}
    r = h.client.post("/api/runs", json={"project_id": h.project, "version": 7})
    assert r.json() == {"detail": "version not found"}
    r = h.client.post("/api/runs", json={"project_id": h.project, "config": {"optimizer": {"learning_rate": 1}}})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "config.optimizer.learning_rate"
    bad = demo_graph()
    bad["nodes"][6]["params"]["out_features"] = 0
    h.client.post(f"/api/projects/{h.project}/versions", json={"graph": bad})
    r = h.client.post("/api/runs", json={"project_id": h.project})
    assert r.status_code == 422 and r.json()["detail"][0]["node"] == "fc"
    # The trainer's pre-flight checks: data that does not fit the graph is a 422 naming the node.
    r = h.client.post("/api/runs", json={"project_id": h.project, "version": 1, "config": {"data": {"dataset": "iris"}}})
    assert r.status_code == 422
    error = r.json()["detail"][0]
    assert error["node"] == "input" and "iris" in error["message"] and error["suggestion"]
    upload = {"dataset": "upload", "upload": {"path": "0" * 32}}
    r = h.client.post("/api/runs", json={"project_id": h.project, "version": 1, "config": {"data": upload}})
    assert r.json() == {"detail": "upload not found"}
    assert h.executor.submitted == []


def test_upload_run_gets_the_stored_path_but_clients_see_the_id(h: Harness, tmp_path: Path) -> None:
    rows = [",".join([str((i * j) % 7) for j in range(64)] + [str(i % 10)]) for i in range(30)]
    upload_id = h.client.post("/api/datasets", files={"file": ("d.csv", "\n".join(rows).encode())}).json()["id"]
    run_id = h.start(data={"dataset": "upload", "upload": {"path": upload_id, "sample_shape": [1, 8, 8]}})
    sent = h.executor.submitted[0]["config"]["data"]["upload"]["path"]
    assert Path(sent) == (tmp_path / "uploads" / f"{upload_id}.csv").resolve()
    assert h.client.get(f"/api/runs/{run_id}").json()["config"]["data"]["upload"]["path"] == upload_id


def test_checkpoint_download_and_finetune(h: Harness, tmp_path: Path) -> None:
    run_id = h.start()
    assert h.client.post(f"/api/runs/{run_id}/finetune", json={}).json() == {"detail": "run has no checkpoint"}
    folder = tmp_path / "runs" / run_id / "checkpoints" / "step-0000010"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    h.executor.emit(CheckpointEvent, run_id, path=str(folder), step=10, epoch=1, reason="final")
    h.executor.finish(run_id)
    wait_for(lambda: h.client.get(f"/api/runs/{run_id}").json()["has_checkpoint"])
    r = h.client.get(f"/api/runs/{run_id}/checkpoint")
    assert r.status_code == 200 and r.content == b"weights"
    assert r.headers["content-disposition"].endswith('.safetensors"')
    r = h.client.post(f"/api/runs/{run_id}/finetune", json={"config": {"epochs": 2}})
    assert r.status_code == 202
    child = h.client.get(f"/api/runs/{r.json()['id']}").json()
    assert child["parent_run_id"] == run_id and child["config"]["epochs"] == 2
    assert h.executor.submitted[-1]["init_from"] == str(folder.resolve())


def test_checkpoint_outside_the_run_folder_is_never_served(h: Harness, tmp_path: Path) -> None:
    run_id = h.start()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "model.safetensors").write_bytes(b"secret")
    h.executor.emit(CheckpointEvent, run_id, path=str(outside), step=1, epoch=1, reason="final")
    h.executor.finish(run_id)
    wait_for(lambda: h.client.get(f"/api/runs/{run_id}").json()["status"] == "finished")
    assert h.client.get(f"/api/runs/{run_id}/checkpoint").json() == {"detail": "run has no checkpoint"}


# --- restart -------------------------------------------------------------------------------------


def test_restart_keeps_everything_and_fails_orphaned_runs(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        h = Harness(client)
        done = h.start()
        for step in range(1, 4):
            h.executor.step(done, step)
        h.executor.finish(done)
        running = h.start()
        h.executor.step(running, 1)
        wait_for(lambda: not h.writer.pending_for(running) and not h.writer.pending_for(done))
        project = h.project
    # Simulate a crash: the server died without marking the run.
    db = Database(f"sqlite:///{tmp_path / 'layerlab.db'}")
    with db.session() as session:
        session.get(Run, running).status = "running"
        session.commit()
    db.dispose()

    with make_client(tmp_path) as client:
        assert [p["id"] for p in client.get("/api/projects").json()] == [project]
        assert client.get(f"/api/runs/{done}/metrics").json()["steps"] == [[1, 1.0], [2, 0.5], [3, 1 / 3]]
        orphan = client.get(f"/api/runs/{running}").json()
        assert orphan["status"] == "failed" and orphan["error"] == "server stopped"
        with client.websocket_connect(f"/api/runs/{running}/events?after=0") as ws:
            events = receive_until_closed(ws)
        assert [(e["seq"], e["type"], e["reason"]) for e in events] == [(1, "run_failed", "server stopped")]
        with client.websocket_connect(f"/api/runs/{done}/events") as ws:
            assert [e["type"] for e in receive_until_closed(ws)][-1] == "run_finished"


def test_shutdown_marks_unfinished_runs_failed(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        h = Harness(client)
        run_id = h.start()
    db = Database(f"sqlite:///{tmp_path / 'layerlab.db'}")
    with db.session() as session:
        run = session.scalar(select(Run).where(Run.id == run_id))
        assert (run.status, run.error) == ("failed", "server stopped")
    db.dispose()


def test_checkpoint_found_after_the_data_dir_moved(tmp_path: Path) -> None:
    from layerlab.api.runs import checkpoint_file

    folder = tmp_path / "runs" / "r1" / "checkpoints" / "step-0000010"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w")
    moved = "/old/data/runs/r1/checkpoints/step-0000010"
    assert checkpoint_file(tmp_path / "runs", "r1", moved) == folder.resolve() / "model.safetensors"
    assert checkpoint_file(tmp_path / "runs", "r1", "/etc") is None
    assert checkpoint_file(tmp_path / "runs", "r1", "../../../etc/passwd") is None
