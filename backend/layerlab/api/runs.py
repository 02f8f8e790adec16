"""Runs: the bridge between the executor's events and the database and websocket watchers.

The executor calls :meth:`RunManager.on_event` from its own threads. Each event is buffered for
the batched writer (with the run row's new status and metrics), then published on the event loop
to the run's watchers and, when the status changed, to the status watchers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from layerlab.train.events import RunFailed

from .db import ACTIVE_STATUSES, Database, Run, RunEvent, utcnow
from .streaming import EventHub, EventWriter, call_on_loop

log = logging.getLogger(__name__)

SERVER_STOPPED = "server stopped"
STATUS_OF = {
    "run_queued": "queued",
    "run_started": "running",
    "run_paused": "paused",
    "run_resumed": "running",
    "run_finished": "finished",
    "run_failed": "failed",
    "run_stopped": "stopped",
}
TERMINAL_EVENTS = frozenset({"run_finished", "run_failed", "run_stopped"})

ExecutorFactory = Callable[[Path, int], Any]


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)


def _json_safe(data: Any) -> Any:
    """NaN and infinite losses become null: JSON has no such numbers."""
    if isinstance(data, float):
        return data if data == data and data not in (float("inf"), float("-inf")) else None
    if isinstance(data, dict):
        return {k: _json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_json_safe(v) for v in data]
    return data


def default_executor(runs_dir: Path, max_concurrent: int, *, num_threads: int | None = None) -> Any:
    """The executor ``LAYERLAB_EXECUTOR`` names (``local``, the default, or ``ray``)."""
    from layerlab.cluster import executor_kind, make_executor

    if executor_kind() == "local":
        from layerlab.train.executor import LocalExecutor

        return LocalExecutor(runs_dir, max_concurrent=max_concurrent,
                             num_threads=num_threads or worker_threads(max_concurrent))
    return make_executor(runs_dir=runs_dir, max_concurrent=max_concurrent)


def worker_threads(max_concurrent: int) -> int:
    """torch threads per local run: the cores less one, shared by the runs. The core left over keeps
    the server streaming; without it, torch's spinning worker threads and the server fight for the
    CPU and a run with 100 watchers trained 4× slower on 2 cores (benchmarks/bench_stream.py)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, (cores - 1) // max_concurrent)


@dataclass
class LiveRun:
    """What the manager knows about a run it has submitted this session."""

    project_id: str | None
    status: str = "queued"
    last_seq: int = -1
    pause_requested: bool = False
    changes: dict[str, Any] = field(default_factory=dict)  # the run row as the events left it


class RunManager:
    def __init__(
        self,
        *,
        db: Database,
        writer: EventWriter,
        hub: EventHub,
        runs_dir: Path,
        max_concurrent: int,
        executor_factory: ExecutorFactory | None = None,
    ) -> None:
        self.db = db
        self.writer = writer
        self.hub = hub
        self.runs_dir = runs_dir.resolve()
        self._max_concurrent = max_concurrent
        self._factory = executor_factory or default_executor
        self._executor: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self._lock = threading.RLock()
        self._live: dict[str, LiveRun] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    @property
    def executor(self) -> Any:
        """The executor, created on first use (it imports torch)."""
        with self._lock:
            if self._executor is None:
                self._executor = self._factory(self.runs_dir, self._max_concurrent)
                self._unsubscribe = self._executor.subscribe(self.on_event)
            return self._executor

    def mark_orphans_failed(self) -> list[str]:
        """At start-up: runs the database thinks are active died with the previous server."""
        with self.db.session() as session:
            orphans = list(session.scalars(select(Run).where(Run.status.in_(ACTIVE_STATUSES))))
            for run in orphans:
                self._fail_row(session, run, SERVER_STOPPED)
            session.commit()
            return [run.id for run in orphans]

    def _fail_row(self, session: Any, run: Run, reason: str) -> None:
        last = session.scalar(select(RunEvent.type).where(RunEvent.run_id == run.id).order_by(RunEvent.seq.desc()).limit(1))
        if last != "run_failed":  # the history already ends in a failure: do not add a second
            seq = run.last_seq + 1
            event = RunFailed(run_id=run.id, seq=seq, reason=reason, step=run.step or None)
            session.add(RunEvent(run_id=run.id, seq=seq, type="run_failed",
                                 data=_json_safe(event.model_dump(mode="json"))))
            run.last_seq = seq
        run.status, run.error, run.finished_at = "failed", reason, utcnow()

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if executor is not None:
            try:
                executor.shutdown(timeout=5.0)
            except Exception:
                log.exception("the executor did not shut down cleanly")
        if unsubscribe is not None:
            unsubscribe()
        self.writer.flush()
        # Whatever did not end by itself is marked now (and again at start-up, after a crash).
        self.mark_orphans_failed()

    # --- submitting --------------------------------------------------------------------------------

    def submit(self, run_id: str, *, project_id: str | None, graph: dict[str, Any], config: dict[str, Any],
               init_from: str | None = None, resume_from: str | None = None, start_seq: int = 0) -> None:
        """Hand a run (already in the database) to the executor; a continued run (``resume_from``)
        numbers its events on from ``start_seq``."""
        with self._lock:
            self._live[run_id] = LiveRun(project_id=project_id, last_seq=start_seq - 1)
        self.publish_status(run_id, project_id, "queued", **({} if resume_from else {"step": 0, "epoch": 0}))
        try:
            self.executor.submit(run_id, graph, config, init_from=init_from, resume_from=resume_from,
                                 start_seq=start_seq)
        except Exception as e:  # the executor refused (shut down, bad resource): the run failed
            log.exception("submitting run %s failed", run_id)
            self.emit_synthetic(RunFailed(run_id=run_id, reason=f"the run could not be submitted: {e}"))

    def emit_synthetic(self, event: Any) -> None:
        """An event made by the server itself (seq follows the run's last)."""
        with self._lock:
            live = self._live.get(event.run_id)
            seq = live.last_seq + 1 if live else 0
        self.on_event(event.model_copy(update={"seq": seq}))

    # --- events ------------------------------------------------------------------------------------

    def on_event(self, event: Any) -> None:
        """Called by the executor (any thread) for every event, in seq order per run."""
        data = _json_safe(event.model_dump(mode="json") if hasattr(event, "model_dump") else dict(event))
        run_id, seq, kind = data["run_id"], int(data["seq"]), data["type"]
        with self._lock:
            live = self._live.get(run_id)
            if live is None:
                log.warning("event %s for unknown run %s dropped", kind, run_id)
                return
            if seq <= live.last_seq:
                return  # a duplicate
            live.last_seq = seq
            old_status = live.status
            new_status = STATUS_OF.get(kind, old_status)
            if kind == "run_paused":
                live.pause_requested = False
            live.status = new_status
            changes = self._row_changes(data, new_status)
            live.changes.update(changes)
            self.writer.append(run_id, data, changes)
            text = dumps(data)
            call_on_loop(self.loop, self.hub.publish, run_id, seq, text)
        if new_status != old_status or kind in ("epoch",):
            self.publish_status(
                run_id, live.project_id, new_status, step=data.get("step"), epoch=data.get("epoch"), seq=seq,
                error=data.get("reason") if kind == "run_failed" else None,
            )

    @staticmethod
    def _row_changes(data: dict[str, Any], status: str) -> dict[str, Any]:
        kind = data["type"]
        now = utcnow()
        changes: dict[str, Any] = {"last_seq": int(data["seq"]), "status": status}
        if isinstance(data.get("step"), int):
            changes["step"] = data["step"]
        if isinstance(data.get("epoch"), int):
            changes["epoch"] = data["epoch"]
        if kind == "run_started":
            changes.update(started_at=now, total_steps=data.get("total_steps"),
                           step=data.get("start_step", 0), epoch=data.get("start_epoch", 0))
        elif kind == "step":
            points = data.get("points") or []
            if points:
                changes["train_loss"] = points[-1][1]
        elif kind == "epoch":
            changes.update(train_loss=data.get("train_loss"), val_loss=data.get("val_loss"),
                           val_accuracy=data.get("val_accuracy"))
        elif kind == "checkpoint":
            changes["checkpoint"] = data.get("path")
        elif kind in TERMINAL_EVENTS:
            changes["finished_at"] = now
            if data.get("checkpoint"):
                changes["checkpoint"] = data["checkpoint"]
            if kind == "run_finished":
                for key in ("train_loss", "val_loss", "val_accuracy"):
                    if data.get(key) is not None:
                        changes[key] = data[key]
            if kind == "run_failed":
                changes["error"] = data.get("reason")
        return changes

    def publish_status(self, run_id: str, project_id: str | None, status: str, **extra: Any) -> None:
        message = {"type": "run_status", "run_id": run_id, "project_id": project_id, "status": status, **extra}
        call_on_loop(self.loop, self.hub.publish_status, dumps(message))

    def publish_deleted(self, run_id: str) -> None:
        call_on_loop(self.loop, self.hub.publish_status, dumps({"type": "run_deleted", "run_id": run_id}))

    # --- controls ----------------------------------------------------------------------------------

    def live_status(self, run_id: str) -> str | None:
        with self._lock:
            live = self._live.get(run_id)
            return live.status if live else None

    def live_overlay(self, run: Run) -> Run:
        """The row with the newest status of a run that is still buffered for the writer."""
        with self._lock:
            live = self._live.get(run.id)
            if live is not None and live.last_seq > run.last_seq:
                for key, value in live.changes.items():
                    setattr(run, key, value)
        return run

    def stop(self, run_id: str) -> None:
        self.executor.stop(run_id)

    def kill(self, run_id: str) -> None:
        self.executor.kill(run_id)

    def pause(self, run_id: str) -> None:
        with self._lock:
            live = self._live.get(run_id)
            if live is not None:
                live.pause_requested = True
        self.executor.pause(run_id)

    def resume(self, run_id: str) -> None:
        with self._lock:
            live = self._live.get(run_id)
            if live is not None:
                live.pause_requested = False
        self.executor.resume(run_id)

    def last_seq(self, run: Run) -> int:
        """The seq of the run's last event, wherever it is (row, live state or write buffer)."""
        with self._lock:
            live = self._live.get(run.id)
            live_seq = live.last_seq if live is not None else -1
        pending = [e["seq"] for e in self.writer.pending_for(run.id)]
        return max([run.last_seq, live_seq, *pending])

    def can_resume(self, run_id: str) -> bool:
        with self._lock:
            live = self._live.get(run_id)
            return live is not None and (live.status == "paused" or live.pause_requested)

    # --- history -----------------------------------------------------------------------------------

    def history(self, run_id: str, *, after: int = -1, limit: int | None = None,
                types: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """Stored events after ``after``, including those still buffered, in seq order."""
        # The buffer first: an event leaves it only after it is committed, so reading the
        # database second cannot miss one that moved in between.
        pending = [e for e in self.writer.pending_for(run_id) if e["seq"] > after and (not types or e["type"] in types)]
        with self.db.session() as session:
            query = select(RunEvent.data).where(RunEvent.run_id == run_id, RunEvent.seq > after)
            if types:
                query = query.where(RunEvent.type.in_(types))
            query = query.order_by(RunEvent.seq)
            if limit is not None:
                query = query.limit(limit)
            stored = list(session.scalars(query))
        merged = {e["seq"]: e for e in stored}
        for e in pending:
            merged.setdefault(e["seq"], e)
        events = [merged[s] for s in sorted(merged)]
        return events[:limit] if limit is not None else events

    def forget(self, run_id: str) -> None:
        self.writer.forget_run(run_id)


def checkpoint_file(runs_dir: Path, run_id: str, checkpoint: str | None) -> Path | None:
    """The weights file of a run's checkpoint, only if it lies inside that run's own folder.

    Events carry absolute paths; if the data dir has moved since, the checkpoint is looked up by
    name in the run's folder as it is now.
    """
    if not checkpoint:
        return None
    root = (runs_dir / run_id).resolve()
    path = Path(checkpoint)
    path = (path if path.is_absolute() else root / path).resolve()
    if not path.is_relative_to(root):
        path = root / "checkpoints" / path.name
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.resolve().is_relative_to(root) or not path.is_file():
        return None
    return path
