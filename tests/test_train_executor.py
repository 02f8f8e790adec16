"""The local executor with real spawned worker processes: events, queueing, stop/pause/resume/kill."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import started_event
from layerlab.train import LocalExecutor, read_state
from layerlab.train.events import Event

TIMEOUT = 120.0  # seconds to wait for any one event; a spawned worker imports torch first


def _graph() -> dict[str, Any]:
    ids = [("x", "Input", {"shape": [2]}), ("fc1", "Linear", {"out_features": 16}), ("act", "ReLU", {}),
           ("fc2", "Linear", {"out_features": 4}), ("y", "Output", {})]
    nodes = [{"id": i, "op": op, "params": p} for i, op, p in ids]
    edges = [{"source": a[0], "target": b[0]} for a, b in zip(ids, ids[1:], strict=False)]
    return {"format": "layerlab.graph/1", "nodes": nodes, "edges": edges}


def _config(**kw: Any) -> dict[str, Any]:
    return {"data": {"dataset": "blobs", "n_samples": 200, "batch_size": 16}, "device": "cpu",
            "layer_stats_every": 0, **kw}


class Recorder:
    """Collects every event from the executor's reader threads; waits for conditions."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def of(self, run_id: str) -> list[Event]:
        with self.cond:
            return [e for e in self.events if e.run_id == run_id]

    def wait(self, what: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        with self.cond:
            if not self.cond.wait_for(what, timeout=timeout):
                raise AssertionError(f"timed out; events so far: {[(e.run_id, e.type) for e in self.events]}")

    def wait_type(self, run_id: str, kind: str) -> Event:
        self.wait(lambda: any(e.type == kind for e in self.of(run_id)))
        return next(e for e in self.of(run_id) if e.type == kind)


@pytest.fixture
def executor(tmp_path: Path) -> Any:
    ex = LocalExecutor(tmp_path / "runs", max_concurrent=1, gpus=0, num_threads=1)
    try:
        yield ex
    finally:
        ex.shutdown(timeout=10)


def test_a_spawned_run_end_to_end(executor: LocalExecutor) -> None:
    executor.submit("e2e", _graph(), _config(epochs=2))
    events = list(executor.events("e2e", timeout=TIMEOUT))
    kinds = [e.type for e in events]
    assert [k for k in kinds if k != "run_starting"][0] == "run_started" and kinds[-1] == "run_finished"
    assert {e.phase for e in events if e.type == "run_starting"} >= {"data", "model"}
    assert kinds.count("epoch") == 2 and "step" in kinds and "checkpoint" in kinds
    assert [e.seq for e in events] == list(range(len(events)))
    steps = [s for e in events if e.type == "step" for s, _ in e.points]
    assert steps == list(range(1, started_event(events).total_steps + 1))
    assert started_event(events).device == "cpu" and started_event(events).dataset.name == "blobs"
    assert Path(events[-1].checkpoint, "model.safetensors").is_file()
    assert executor.state("e2e") == "finished"


def test_queue_positions_and_controls(executor: LocalExecutor) -> None:
    rec = Recorder()
    executor.subscribe(rec)
    graph = _graph()
    executor.submit("a", graph, _config(epochs=10_000))
    executor.pause("a")  # takes effect at its first batch
    executor.submit("b", graph, _config(epochs=10_000))
    executor.submit("c", graph, _config(epochs=1))
    assert [(e.type, e.position) for e in rec.of("b")] == [("run_queued", 1)]
    assert [(e.type, e.position) for e in rec.of("c")] == [("run_queued", 2)]
    assert executor.state("b") == "queued"

    rec.wait_type("a", "run_paused")
    assert executor.state("a") == "paused"
    executor.kill("c")  # still queued: dropped at once
    assert [e.type for e in rec.of("c")] == ["run_queued", "run_failed"]
    assert rec.of("c")[-1].reason == "killed"

    paused_at = rec.wait_type("a", "run_paused").step
    time.sleep(0.3)
    assert not [e for e in rec.of("a") if e.type == "step" and e.step > paused_at]  # really holding
    executor.resume("a")
    rec.wait_type("a", "run_resumed")
    rec.wait(lambda: any(e.type == "step" and e.step > paused_at + 3 for e in rec.of("a")))
    executor.stop("a")
    stopped = rec.wait_type("a", "run_stopped")
    assert stopped.checkpoint is not None and read_state(stopped.checkpoint)["step"] == stopped.step
    assert stopped.step > paused_at + 3

    # a's slot frees, b starts; killing it ends its process and reports 'killed'.
    rec.wait(lambda: any(e.type == "step" for e in rec.of("b")))
    executor.kill("b")
    failed = rec.wait_type("b", "run_failed")
    assert failed.reason == "killed" and executor.state("b") == "failed"
    assert executor._runs["b"].process is None  # noqa: SLF001 - the worker is gone

    for run_id in ("a", "b", "c"):
        seqs = [e.seq for e in rec.of(run_id)]
        assert seqs == list(range(len(seqs))), run_id
        assert [e.type for e in rec.of(run_id)].count("run_started") <= 1

    # Resume the stopped run under the same id: it continues at its step, seq keeps counting.
    executor.submit("a", graph, _config(epochs=10_000, max_steps=stopped.step + 5), resume_from=stopped.checkpoint)
    rec.wait(lambda: rec.of("a")[-1].type == "run_finished")
    resumed = [e for e in rec.of("a") if e.seq > stopped.seq]
    resumed_start = next(e for e in resumed if e.type == "run_started")
    assert resumed_start.start_step == stopped.step
    assert resumed[-1].step == stopped.step + 5
    seqs = [e.seq for e in rec.of("a")]
    assert seqs == list(range(len(seqs)))


def test_stop_queued_bad_submissions_and_a_dying_worker(executor: LocalExecutor) -> None:
    executor.submit("first", _graph(), _config(epochs=10_000))
    executor.pause("first")
    executor.submit("second", _graph(), _config(epochs=1))
    executor.stop("second")
    events = executor.history("second")
    assert [e.type for e in events] == ["run_queued", "run_stopped"] and events[-1].checkpoint is None
    with pytest.raises(ValueError, match="already"):
        executor.submit("first", _graph(), _config(epochs=1))
    with pytest.raises(KeyError):
        executor.stop("nope")
    with pytest.raises(Exception, match="learning_rate"):
        executor.submit("third", _graph(), _config(optimizer={"learning_rate": 1}))

    # A worker that dies without a word (the OOM killer, a segfault) is reported as failed.
    rec = Recorder()
    executor.subscribe(rec, run_id="first", replay=True)
    rec.wait_type("first", "run_paused")
    os.kill(executor._runs["first"].process.pid, signal.SIGKILL)  # noqa: SLF001
    failed = rec.wait_type("first", "run_failed")
    assert "exited unexpectedly" in failed.reason and "-9" in failed.reason
    assert rec.of("first")[-1] is failed and executor.state("first") == "failed"


def test_one_run_per_gpu_and_fifo_positions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler alone (no processes): two fake GPUs, one CPU slot."""
    ex = LocalExecutor(tmp_path, gpus=2, max_concurrent=1)
    started: list[tuple[str, str]] = []

    def fake_start(run: Any, device: str) -> None:
        started.append((run.run_id, device))
        run.device, run.process, run.state = device, object(), "running"

    monkeypatch.setattr(ex, "_start", fake_start)
    for run_id, device in [("a", "auto"), ("b", "cuda"), ("c", "auto"), ("d", "cpu"), ("e", "cuda:1"),
                           ("f", "cpu")]:
        ex.submit(run_id, _graph(), _config(device=device))
    assert started == [("a", "cuda:0"), ("b", "cuda:1"), ("d", "cpu")]
    assert [(r, ex.history(r)[-1].position) for r in ("c", "e", "f")] == [("c", 1), ("e", 2), ("f", 3)]

    ex._runs["b"].process = None  # noqa: SLF001 - b's process exits: cuda:1 is free
    ex._schedule()  # noqa: SLF001
    assert started[-1] == ("c", "cuda:1")
    assert [e.position for e in ex.history("e")] == [2, 1]  # told its new place
    assert ex.history("f")[-1].position == 2
    ex._runs["d"].process = None  # noqa: SLF001
    ex._schedule()  # noqa: SLF001
    assert started[-1] == ("f", "cpu")  # a CPU run does not wait behind a GPU run
    assert ex.state("e") == "queued"
    for run in ex._runs.values():  # noqa: SLF001 - no real processes to end
        run.process = None
    ex.shutdown()
    assert ex.history("e")[-1].type == "run_stopped"  # a queued run ends with the executor


def test_a_data_parallel_run_takes_all_its_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler alone: devices=2 waits for two free GPUs and then holds both."""
    ex = LocalExecutor(tmp_path, gpus=3, max_concurrent=1)
    started: list[tuple[str, str]] = []

    def fake_start(run: Any, device: str) -> None:
        started.append((run.run_id, device))
        run.device, run.process, run.state = device, object(), "running"

    monkeypatch.setattr(ex, "_start", fake_start)
    ex.submit("one", _graph(), _config(device="cuda"))
    ex.submit("pair", _graph(), _config(device="cuda", devices=2))
    ex.submit("other", _graph(), _config(device="cuda", devices=2))
    assert started == [("one", "cuda:0"), ("pair", "cuda:1,cuda:2")]
    assert ex.history("other")[-1].position == 1
    ex._runs["one"].process = None  # noqa: SLF001 - only one GPU frees up: not enough
    ex._schedule()  # noqa: SLF001
    assert ex.state("other") == "queued"
    ex._runs["pair"].process = None  # noqa: SLF001
    ex._schedule()  # noqa: SLF001
    assert started[-1] == ("other", "cuda:0,cuda:1")
    for run in ex._runs.values():  # noqa: SLF001
        run.process = None
    ex.shutdown()


def test_a_data_parallel_cpu_run_through_the_executor(executor: LocalExecutor) -> None:
    """devices=2 on the CPU: the worker trains with two gloo DDP processes; rank 0 reports."""
    rec = Recorder()
    executor.subscribe(rec)
    executor.submit("ddp", _graph(), _config(devices=2, epochs=3))
    started = rec.wait_type("ddp", "run_started")
    finished = rec.wait_type("ddp", "run_finished")
    assert started.device.startswith("cpu x2")  # rank 0 reports the data-parallel setup
    epochs = [e for e in rec.of("ddp") if e.type == "epoch"]
    assert len(epochs) == 3
    assert epochs[-1].train_loss < epochs[0].train_loss
    assert finished.checkpoint is not None and Path(finished.checkpoint).exists()
    seqs = [e.seq for e in rec.of("ddp")]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
