"""Runs: the run service (starting, continuing, controlling runs) and the bridge between the
executor's events and the database and websocket watchers.

Starting a run happens in one place, :meth:`RunManager.start`: the graph is analysed once, the
data and the graph are checked against each other, the run row is written, and the analysed
model goes to the executor. The routes only call it. The checks (:func:`preflight`) are CPU work:
they run in the app's torch workers (a :class:`~layerlab.offload.CpuPool`) on plain data, and
the server's thread only reads the database and the free memory.

The executor calls :meth:`RunManager.on_event` from its own threads with each event, already in
the run's log (``events.jsonl``). Each is buffered for the batched writer (with the run row's new
status and metrics), then published on the event loop to the run's watchers and, when the status
changed, to the status watchers. The database is an index of the logs: at start-up,
:meth:`RunManager.recover` adds whatever the previous server had not written yet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from layerlab.graph import GraphError, GraphInvalidError
from layerlab.shapes.report import format_bytes
from layerlab.train.config import RunConfig
from layerlab.train.events import (
    ACTIVE_STATUSES,
    CheckpointEvent,
    Emitter,
    EpochEvent,
    Event,
    LayerStatsEvent,
    RunFailed,
    RunFinished,
    RunLog,
    RunPaused,
    RunStarted,
    RunStopped,
    StepEvent,
    parse_event,
)

from ..offload import CpuPool
from .db import Database, GraphVersion, Project, Run, RunEvent, Upload, new_id, utcnow
from .streaming import EventHub, EventWriter, call_on_loop

log = logging.getLogger(__name__)

SERVER_STOPPED = "server stopped"
RECOVER_WAIT_S = 10.0  # at start-up, how long a run's worker may take to finish stopping
# Synthetic sets are checked at this size: their shapes and classes do not depend on it.
CHECK_SAMPLES = 200

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
    """What the manager knows about a run it has submitted since it started."""

    project_id: str | None
    status: str = "queued"
    last_seq: int = -1
    pause_requested: bool = False
    changes: dict[str, Any] = field(default_factory=dict)  # the run row as the events left it


def row_changes(event: Event) -> dict[str, Any]:
    """The run row's columns as this event leaves them."""
    changes: dict[str, Any] = {"last_seq": event.seq}
    if event.status is not None:
        changes["status"] = event.status
    if isinstance(event, (StepEvent, EpochEvent, LayerStatsEvent, CheckpointEvent, RunFinished, RunStopped,
                          RunPaused)):
        changes["step"] = event.step
    if isinstance(event, (StepEvent, EpochEvent, CheckpointEvent, RunFinished, RunStopped)):
        changes["epoch"] = event.epoch
    if isinstance(event, RunStarted):
        changes.update(started_at=utcnow(), total_steps=event.total_steps, step=event.start_step,
                       epoch=event.start_epoch)
    elif isinstance(event, StepEvent) and event.points:
        changes["train_loss"] = _finite(event.points[-1][1])
    elif isinstance(event, EpochEvent):
        changes.update(train_loss=_finite(event.train_loss), val_loss=_finite(event.val_loss),
                       val_accuracy=event.val_accuracy)
    elif isinstance(event, CheckpointEvent):
        changes["checkpoint"] = event.path
    if event.terminal:
        changes["finished_at"] = utcnow()
    if isinstance(event, (RunFinished, RunStopped)) and event.checkpoint:
        changes["checkpoint"] = event.checkpoint
    if isinstance(event, RunFinished):
        for key in ("train_loss", "val_loss", "val_accuracy"):
            if getattr(event, key) is not None:
                changes[key] = _finite(getattr(event, key))
    elif isinstance(event, RunFailed):
        changes["error"] = event.reason
    elif isinstance(event, RunStopped):
        changes["error"] = "interrupted: the server stopped during the run" if event.reason == "interrupted" else None
    return changes


def _finite(x: float | None) -> float | None:
    return _json_safe(x)


def event_json(event: Event) -> dict[str, Any]:
    """An event as it is stored and streamed: JSON, NaN and infinite losses as null."""
    return _json_safe(event.model_dump(mode="json"))


class RunManager:
    def __init__(
        self,
        *,
        db: Database,
        writer: EventWriter,
        hub: EventHub,
        runs_dir: Path,
        uploads_dir: Path | None = None,
        max_concurrent: int,
        cpu: CpuPool,
        executor_factory: ExecutorFactory | None = None,
    ) -> None:
        self.db = db
        self.cpu = cpu
        self.writer = writer
        self.hub = hub
        self.runs_dir = runs_dir.resolve()
        self.uploads_dir = (uploads_dir or runs_dir.parent / "uploads").resolve()
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
        """The executor, created on first use (it imports torch and starts the warm workers)."""
        with self._lock:
            if self._executor is None:
                self._executor = self._factory(self.runs_dir, self._max_concurrent)
                self._unsubscribe = self._executor.subscribe(self.on_event)
            return self._executor

    def warm_up(self) -> None:
        """Create the executor in the background, so its workers are ready before the first run."""
        threading.Thread(target=lambda: self.executor, name="layerlab-executor-start", daemon=True).start()

    def recover(self) -> list[str]:
        """At start-up: the runs the database thinks are active were cut off when the previous server
        ended. Their logs hold every event they made, also those the database had not got yet: those
        are added. A worker still finishing (it stops with a checkpoint when its server is gone) is
        waited for; a run whose log does not end is marked failed. Returns the runs recovered."""
        with self.db.session() as session:
            orphans = list(session.scalars(select(Run).where(Run.status.in_(ACTIVE_STATUSES))))
            deadline = time.monotonic() + RECOVER_WAIT_S
            for run in orphans:
                self._recover_run(session, run, deadline)
            session.commit()
            return [run.id for run in orphans]

    def _recover_run(self, session: Session, run: Run, deadline: float) -> None:
        run_log = RunLog(self.runs_dir / run.id)
        while run_log.held_elsewhere() and time.monotonic() < deadline:
            time.sleep(0.05)
        if run_log.held_elsewhere():
            _kill_worker(run_log)
        logged = run_log.read()
        missed = [e for e in logged if e.seq > run.last_seq]
        if logged:
            ended = logged[-1].terminal
        else:  # no log (a run from before logs were kept): the database's last event tells
            last = session.scalar(select(RunEvent.data).where(RunEvent.run_id == run.id)
                                  .order_by(RunEvent.seq.desc()).limit(1))
            ended = last is not None and parse_event(last).terminal
        if not ended:
            failed = Emitter(run.id, missed.append, start_seq=run_log.next_seq(at_least=run.last_seq + 1)).emit(
                RunFailed, reason=SERVER_STOPPED, step=run.step or None)
            run_log.append(failed)
            run_log.close()
        if not missed:  # the row is behind its own last event
            changes = row_changes(logged[-1]) if logged else {}
            run.status, run.error, run.finished_at = changes.get("status", "failed"), changes.get(
                "error", SERVER_STOPPED), utcnow()
        for event in missed:
            session.add(RunEvent(run_id=run.id, seq=event.seq, type=event.type, data=event_json(event)))
            for key, value in row_changes(event).items():
                setattr(run, key, value)

    def shutdown(self, *, timeout: float = 3.0) -> None:
        """Stop every run gracefully (each saves a checkpoint and ends as stopped, interrupted), then
        write what is buffered: the one way this server lets go of its runs. ``timeout`` bounds the
        wait for the runs (then they are killed), well inside the 5 s a SIGTERM allows."""
        with self._lock:
            executor, self._executor = self._executor, None
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if executor is not None:
            try:
                executor.shutdown(timeout=timeout)
            except Exception:
                log.exception("the executor did not shut down cleanly")
        if unsubscribe is not None:
            unsubscribe()
        self.writer.flush()
        # Whatever did not end by itself is marked now (and again at start-up, after a crash).
        self.recover()

    # --- starting ----------------------------------------------------------------------------------

    def start(self, session: Session, *, project_id: str, version: int | None, name: str | None,
              config: RunConfig, parent: Run | None = None, init_from: str | None = None,
              init_weights: str | None = None) -> Run:
        """Start training a project version: analyse its graph (once), check it against the data,
        write the run row and hand the analysed model to the executor. Raises GraphInvalidError (422)
        when the run could not start, HTTPException 404 for an unknown project or version."""
        project, row = _project_version(session, project_id, version)
        worker_config = self.resolve_config(session, config)
        checked = self._preflight(row.graph, worker_config, keep_spec=True, state_shapes=init_weights is not None)
        spec = checked.spec
        if init_weights is not None:
            init_from = self._check_weights(init_weights, checked.state_shapes or {})
        run = Run(project_id=project.id, version=row.version, graph=row.graph, config=worker_config,
                  name=name or f"{project.name} v{row.version}", parent_run_id=parent.id if parent else None,
                  init_weights=init_weights, status="queued")
        session.add(run)
        session.commit()
        self.submit(run.id, project_id=project.id, graph=row.graph, config=worker_config, init_from=init_from,
                    spec=spec)
        return run

    def check(self, session: Session, *, graph: dict[str, Any] | None, config: RunConfig,
              project_id: str | None = None) -> list[GraphError]:
        """What would stop a run of this graph (default: the project's latest version) under this
        config from starting: the start's own preflight, answered instead of raised; [] when it would
        start. HTTPException 404 for an unknown project or upload, as at the start."""
        if graph is None:
            if project_id is None:
                raise GraphInvalidError([GraphError(field="graph", message="give a graph or a project_id")])
            graph = _project_version(session, project_id, None)[1].graph
        return self._preflight(graph, self.resolve_config(session, config), keep_spec=False, raise_errors=False).errors

    def continue_run(self, session: Session, run: Run) -> None:
        """Continue a stopped run from its checkpoint under the same id (HTTPException 409 if it cannot)."""
        if (self.live_status(run.id) or run.status) != "stopped":
            raise HTTPException(409, "run is not stopped")
        path = checkpoint_file(self.runs_dir, run.id, run.checkpoint)
        if path is None:
            raise HTTPException(409, "run has no checkpoint")
        spec = self._preflight(run.graph, run.config, keep_spec=True).spec
        start_seq = self.last_seq(run) + 1
        run.status, run.finished_at, run.error = "queued", None, None
        session.commit()
        self.submit(run.id, project_id=run.project_id, graph=run.graph, config=run.config,
                    resume_from=str(path.parent), start_seq=start_seq, spec=spec)

    @property
    def weights_dir(self) -> Path:
        return self.runs_dir.parent / "weights"

    def store_weights(self, filename: str, body: bytes) -> dict[str, Any]:
        """Keep uploaded weights as .safetensors (a .pt is read with weights_only=True and converted);
        a file that holds anything but named tensors is a 422 saying what it holds."""
        import tempfile

        from layerlab.train.checkpoint import CheckpointError, read_weight_file, write_weight_file

        suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if suffix not in (".safetensors", ".pt", ".pth"):
            raise GraphInvalidError([GraphError(field="file", message=f"unsupported weights file {filename!r}",
                                                suggestion="upload a .safetensors file or a .pt state_dict")])
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.weights_dir, suffix=suffix) as tmp:
            tmp.write(body)
            tmp.flush()
            try:
                tensors = read_weight_file(tmp.name)
            except CheckpointError as e:
                raise GraphInvalidError([GraphError(field="file", message=f"{filename}: {e}",
                                                    suggestion=e.hint)]) from e
        weights_id = new_id()
        write_weight_file(tensors, self.weights_dir / f"{weights_id}.safetensors")
        return {"id": weights_id, "filename": filename, "tensors": len(tensors),
                "elements": sum(t.numel() for t in tensors.values())}

    def _check_weights(self, weights_id: str, own: dict[str, tuple[int, ...]]) -> str:
        """The stored weights' path, after checking every tensor's name and shape against the graph's
        (``own``, the pre-flight's state_dict shapes); only the file's header is read."""
        from safetensors import safe_open

        from layerlab.train.checkpoint import mismatch

        path = self.weights_dir / f"{weights_id}.safetensors"
        if not path.is_file():
            raise HTTPException(404, "weights not found")
        with safe_open(str(path), framework="pt") as f:
            theirs = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
        problem = mismatch(own, theirs)
        if problem:
            raise GraphInvalidError([GraphError(
                field="init_weights", message=f"the weights do not match this graph: {problem}",
                suggestion="upload the state_dict of a model built from this graph (same node ids and shapes)")])
        return str(path)

    def resolve_config(self, session: Session, config: RunConfig) -> dict[str, Any]:
        """The config as the worker gets it: an upload id becomes the stored file's path."""
        data = config.model_dump(mode="json")
        upload = data["data"].get("upload")
        if upload is not None:
            row = session.get(Upload, str(upload["path"]))
            if row is None:
                raise HTTPException(404, "upload not found")
            upload["path"] = str(self.uploads_dir / row.stored_name)
        return data

    def _preflight(self, graph: dict[str, Any], config: dict[str, Any], *, keep_spec: bool,
                   state_shapes: bool = False, raise_errors: bool = True) -> Preflight:
        """:func:`preflight` in a worker process (this thread only waits); what would stop the run is
        a GraphInvalidError (422) unless ``raise_errors`` is False. ServerBusyError (503) when every
        worker is busy and the line is full."""
        room = available_memory(str(config.get("device", "auto")))
        checked = self.cpu.call(preflight, graph, config, room, keep_spec, state_shapes)
        if checked.errors and raise_errors:
            raise GraphInvalidError(checked.errors)
        return checked

    def submit(self, run_id: str, *, project_id: str | None, graph: dict[str, Any], config: dict[str, Any],
               init_from: str | None = None, resume_from: str | None = None, start_seq: int = 0,
               spec: Any = None) -> None:
        """Hand a run (already in the database) to the executor; a continued run (``resume_from``)
        numbers its events on from ``start_seq``."""
        with self._lock:
            self._live[run_id] = LiveRun(project_id=project_id, last_seq=start_seq - 1)
        self.publish_status(run_id, project_id, "queued", **({} if resume_from else {"step": 0, "epoch": 0}))
        try:
            self.executor.submit(run_id, graph, config, init_from=init_from, resume_from=resume_from,
                                 start_seq=start_seq, spec=spec)
        except Exception as e:  # the executor refused (shut down, bad resource): the run failed
            log.exception("submitting run %s failed", run_id)
            run_log = RunLog(self.runs_dir / run_id)
            Emitter(run_id, self._log_and_handle(run_log), start_seq=run_log.next_seq(at_least=start_seq)).emit(
                RunFailed, reason=f"the run could not be submitted: {e}")
            run_log.close()

    def _log_and_handle(self, run_log: RunLog) -> Callable[[Event], None]:
        def sink(event: Event) -> None:
            run_log.append(event)
            self.on_event(event)

        return sink

    # --- events ------------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Called by the executor (any thread) for every event, in seq order per run."""
        run_id, seq = event.run_id, event.seq
        with self._lock:
            live = self._live.get(run_id)
            if live is None:
                log.warning("event %s for unknown run %s dropped", event.type, run_id)
                return
            if seq <= live.last_seq:
                return  # a duplicate
            live.last_seq = seq
            old_status = live.status
            new_status = event.status or old_status
            if isinstance(event, RunPaused):
                live.pause_requested = False
            live.status = new_status
            changes = row_changes(event)
            live.changes.update(changes)
            data = event_json(event)
            self.writer.append(run_id, data, changes)
            call_on_loop(self.loop, self.hub.publish, run_id, seq, dumps(data), event.terminal)
        if new_status != old_status or isinstance(event, EpochEvent):
            self.publish_status(
                run_id, live.project_id, new_status, step=changes.get("step"), epoch=changes.get("epoch"), seq=seq,
                error=event.reason if isinstance(event, RunFailed) else None,
            )

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

    def is_active(self, run: Run) -> bool:
        """Whether the run is queued, running or paused now (a stopped run may have been continued)."""
        return (self.live_status(run.id) or run.status) in ACTIVE_STATUSES

    def live_overlay(self, run: Run) -> Run:
        """The row with the newest status of a run that is still buffered for the writer."""
        with self._lock:
            live = self._live.get(run.id)
            if live is not None and live.last_seq > run.last_seq:
                for key, value in live.changes.items():
                    setattr(run, key, value)
        return run

    def ready_workers(self) -> int:
        """Warm worker processes waiting for a run (0 for executors without a pool)."""
        with self._lock:
            executor = self._executor
        ready = getattr(executor, "ready_workers", None)
        return ready() if ready is not None else 0

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
        """The seq of the run's last event, wherever it is (log, row, live state or write buffer)."""
        with self._lock:
            live = self._live.get(run.id)
            live_seq = live.last_seq if live is not None else -1
        pending = [e["seq"] for e in self.writer.pending_for(run.id)]
        logged = RunLog(self.runs_dir / run.id).next_seq() - 1
        return max([run.last_seq, live_seq, logged, *pending])

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

    def latest(self, run_id: str, event_type: str) -> dict[str, Any] | None:
        """The stored event of this type with the highest seq, including one still buffered."""
        pending = [e for e in self.writer.pending_for(run_id) if e["type"] == event_type]
        with self.db.session() as session:
            stored = session.scalar(select(RunEvent.data).where(RunEvent.run_id == run_id, RunEvent.type == event_type)
                                    .order_by(RunEvent.seq.desc()).limit(1))
        candidates = pending + ([stored] if stored is not None else [])
        return max(candidates, key=lambda e: e["seq"]) if candidates else None

    def forget(self, run_id: str) -> None:
        self.writer.forget_run(run_id)


@dataclass
class Preflight:
    """What the pre-flight found (plain data, so it comes back from a worker process): the problems
    that stop the run, [] when it can start; then the model spec the run's worker builds from, and
    the model's state_dict shapes (to check uploaded weights against), when asked for."""

    errors: list[GraphError]
    spec: Any = None
    state_shapes: dict[str, tuple[int, ...]] | None = None


def preflight(graph: Any, config: dict[str, Any], room: tuple[str, int | None], keep_spec: bool,
              state_shapes: bool) -> Preflight:
    """The graph analysed once, and the trainer's own checks (memory estimate against ``room``, the
    free memory where it would train; dataset loadable; graph against data and loss), so a run that
    cannot start is a 422 naming the node, not a failed run a moment later. A job for the CpuPool:
    the graph as JSON and the run config as the worker gets it in, a :class:`Preflight` out."""
    try:
        spec = _checked_spec(graph, RunConfig.model_validate(config), room)
    except GraphInvalidError as e:
        return Preflight(e.errors)
    shapes = None
    if state_shapes:
        import torch

        with torch.device("meta"):  # shapes only: nothing is allocated
            shapes = {k: tuple(v.shape) for k, v in spec.build().state_dict().items()}
    return Preflight([], spec if keep_spec else None, shapes)


def _checked_spec(graph: Any, config: RunConfig, room: tuple[str, int | None]) -> Any:
    from layerlab.shapes import analyze
    from layerlab.train.data import DatasetError, load_dataset
    from layerlab.train.spec import RunSetupError, check_data, spec_from_analysis

    analysis = analyze(graph, batch_size=config.data.batch_size, optimizer=config.optimizer.name)
    if not analysis.report.valid:
        raise GraphInvalidError(analysis.report.errors)
    check_memory(analysis.report.totals.memory, room)
    data = config.data.model_copy(update={"n_samples": min(config.data.n_samples, CHECK_SAMPLES)})
    try:
        spec = spec_from_analysis(analysis, config)
        check_data(spec, load_dataset(data, seed=config.seed), config.loss)
    except RunSetupError as e:
        raise GraphInvalidError([GraphError(node=e.node, field=e.field, message=e.reason,
                                            suggestion=e.hint)]) from e
    except DatasetError as e:
        raise GraphInvalidError([GraphError(field="config.data", message=str(e))]) from e
    return spec


def _project_version(session: Session, project_id: str, version: int | None) -> tuple[Project, GraphVersion]:
    """A project and one of its versions (default the latest); HTTPException 404 naming which is missing."""
    project = session.get(Project, project_id)
    if project is None:
        raise HTTPException(404, "project not found")
    row = session.scalar(select(GraphVersion).where(GraphVersion.project_id == project.id,
                                                    GraphVersion.version == (version or project.latest_version)))
    if row is None:
        raise HTTPException(404, "version not found")
    return project, row


def check_memory(memory: Any, room: tuple[str, int | None]) -> None:
    """Refuse a run whose training-memory estimate does not fit where it would train (``room``, from
    :func:`available_memory`): a 422 quoting the estimate and its biggest parts."""
    if memory is None:
        return
    where, available = room
    if available is None or memory.total_bytes <= available:
        return
    parts = sorted([(memory.activations_bytes, f"activations at batch size {memory.batch_size}"),
                    (memory.optimizer_bytes, f"{memory.optimizer} optimizer state"),
                    (memory.gradients_bytes, "gradients"), (memory.weights_bytes, "weights")], reverse=True)
    biggest = ", ".join(f"{what} {format_bytes(size)}" for size, what in parts[:2])
    raise GraphInvalidError([GraphError(
        field="config.data.batch_size",
        message=f"this run needs about {format_bytes(memory.total_bytes)} to train but {where} has {format_bytes(available)} "
                f"available; the biggest parts: {biggest}",
        suggestion="use a smaller data.batch_size (activations grow with it), freeze layers (no gradients or "
                   "optimizer state for them), or train in bf16 on a GPU",
    )])


def available_memory(device: str) -> tuple[str, int | None]:
    """(where, bytes free): the GPU a CUDA run would use, else this machine's available RAM."""
    if device != "cpu":  # torch only for a run that may use a GPU
        import torch

        if torch.cuda.is_available():
            index = int(device.split(":")[1]) if device.startswith("cuda:") else 0
            free, _ = torch.cuda.mem_get_info(index)
            return f"cuda:{index}", free
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return "this machine", int(line.split()[1]) * 1024
    except OSError:
        pass
    return "this machine", None


def _kill_worker(run_log: RunLog) -> None:
    """A worker that still holds its run's log long after its server died is stuck: end it."""
    pid = run_log.holder_pid()
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        return
    for _ in range(100):
        if not run_log.held_elsewhere():
            return
        time.sleep(0.05)


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
