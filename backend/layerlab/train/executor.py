"""Executors run training runs somewhere and stream their events back.

:class:`Executor` is the interface the API talks to; :class:`LocalExecutor` runs each run in its
own spawned process on this machine, one run per GPU (and ``max_concurrent`` on the CPU), queues
the rest, and forwards events to subscribers. A cluster executor (Ray) can implement the same
interface without touching the trainer: the trainer only needs ``emit`` and a ``Control``.

Every event of a run is in its log (``events.jsonl`` in the run directory) before a subscriber
sees it. The executor writes the events it makes itself (queue positions, a run ended before it
started or after its process died); a local run's process writes its own, and the executor reads
them from the file.

Starting is instant where it can be: a worker process per device slot is started ahead of time
and waits, warm (torch, the trainer and the small datasets loaded); a run takes it, and a fresh
one is started for the next run when this one ends (or has trained for a few seconds).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from .config import RunConfig
from .control import ProcessControl
from .events import (
    Emitter,
    Event,
    LogTail,
    RunFailed,
    RunLog,
    RunQueued,
    RunStarting,
    RunStatus,
    RunStopped,
    is_terminal,
)
from .worker import READY, Job, serve_one

log = logging.getLogger(__name__)

RunState = RunStatus
Subscriber = Callable[[Event], None]


class Executor(ABC):
    """Where runs execute. Every method is safe to call from any thread."""

    @abstractmethod
    def submit(
        self,
        run_id: str,
        graph: dict[str, Any],
        config: RunConfig | dict[str, Any],
        *,
        resume_from: str | None = None,
        init_from: str | None = None,
        start_seq: int | None = None,
        spec: Any = None,
    ) -> None:
        """Queue a run. ``resume_from`` continues a checkpoint (same graph); ``init_from`` starts
        from another run's weights (fine-tuning, the new graph's freezing applies). ``start_seq``
        is the lowest seq its first event may have; it goes on from the run's log in any case, so
        a run id that comes back never reuses a seq. ``spec`` is the ModelSpec of a graph the
        caller has analysed already (the worker then builds the model without analysing again)."""

    @abstractmethod
    def subscribe(self, callback: Subscriber, *, run_id: str | None = None, replay: bool = False) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (of one run, if given); ``replay`` first
        delivers the events already seen. Returns a function that unsubscribes.

        Callbacks run on the executor's threads, one event at a time in seq order per run; they
        should return quickly and must not wait on a thread that is calling into the executor."""

    @abstractmethod
    def state(self, run_id: str) -> RunState:
        """Where a run stands."""

    @abstractmethod
    def stop(self, run_id: str) -> None:
        """Graceful: the run saves a checkpoint after the current batch and emits run_stopped."""

    @abstractmethod
    def pause(self, run_id: str) -> None:
        """Hold the run after the current batch (run_paused)."""

    @abstractmethod
    def resume(self, run_id: str) -> None:
        """Continue a paused run (run_resumed)."""

    @abstractmethod
    def kill(self, run_id: str) -> None:
        """End the run now, without a checkpoint (run_failed, reason 'killed')."""

    @abstractmethod
    def shutdown(self, *, timeout: float = 10.0) -> None:
        """Stop every run (gracefully, with a checkpoint, for up to ``timeout`` seconds, then kill)
        and release resources. The runs end as stopped (interrupted): Continue goes on from there."""

    def events(self, run_id: str, *, timeout: float | None = None) -> Iterator[Event]:
        """A blocking iterator over one run's events, from its first, ending after its terminal event.
        Raises TimeoutError when no event comes for ``timeout`` seconds."""
        inbox: queue.Queue[Event] = queue.Queue()
        unsubscribe = self.subscribe(inbox.put, run_id=run_id, replay=True)
        try:
            while True:
                try:
                    event = inbox.get(timeout=timeout)
                except queue.Empty:
                    raise TimeoutError(f"no event from run {run_id!r} for {timeout} s") from None
                yield event
                if is_terminal(event):
                    return
        finally:
            unsubscribe()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


@dataclass(kw_only=True)
class RunRecord:
    """What every executor keeps per run: where it stands and every event it has emitted."""

    run_id: str
    graph: dict[str, Any]
    log: RunLog
    spec: Any = None
    resume_from: str | None = None
    init_from: str | None = None
    next_seq: int = 0
    state: RunState = "queued"
    position: int | None = None
    reader: threading.Thread | None = None
    last_step: int | None = None
    killed: bool = False
    done: bool = False  # a terminal event was delivered
    ended: threading.Event = field(default_factory=threading.Event)  # its process has exited
    history: list[Event] = field(default_factory=list)


class QueueingExecutor(Executor):
    """The bookkeeping every executor shares: runs by id, one FIFO of waiting runs, subscribers,
    each run's log, and delivery of its events in seq order with the state they imply."""

    def __init__(self, runs_dir: str | Path) -> None:
        self.runs_dir = Path(runs_dir).resolve()
        self._lock = threading.RLock()
        self._runs: dict[str, Any] = {}
        self._waiting: list[str] = []
        self._subscribers: list[tuple[str | None, Subscriber]] = []
        self._closed = False

    def subscribe(self, callback: Subscriber, *, run_id: str | None = None, replay: bool = False) -> Callable[[], None]:
        entry = (run_id, callback)
        with self._lock:
            if replay:
                runs = [self._runs[run_id]] if run_id in self._runs else ([] if run_id else list(self._runs.values()))
                for run in runs:
                    for event in run.history:
                        callback(event)
            self._subscribers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subscribers:
                    self._subscribers.remove(entry)

        return unsubscribe

    def history(self, run_id: str) -> list[Event]:
        with self._lock:
            return list(self._get(run_id).history)

    def _new_record(self, cls: type[RunRecord], run_id: str, *, start_seq: int | None, **fields: Any) -> Any:
        """A run's record, after checking it may be (re)submitted; its seq goes on from its log."""
        if self._closed:
            raise RuntimeError("the executor is shut down")
        previous = self._runs.get(run_id)
        if previous is not None and not previous.done:
            raise ValueError(f"run {run_id!r} is already {previous.state}")
        run_log = RunLog(self.runs_dir / run_id)
        floor = max(start_seq or 0, previous.next_seq if previous is not None else 0)
        return cls(run_id=run_id, log=run_log, next_seq=run_log.next_seq(at_least=floor), **fields)

    def _emit(self, run: RunRecord, event_cls: type, **fields: Any) -> None:
        """An event the executor makes itself: numbered after the run's last, logged, delivered."""
        Emitter(run.run_id, lambda event: self._record(run, event), start_seq=run.next_seq).emit(event_cls, **fields)

    def _record(self, run: RunRecord, event: Event) -> None:
        """An event that this process writes to the run's log, then delivers."""
        with self._lock:
            if run.done or event.seq < run.next_seq:
                return
            run.log.append(event)
            self._deliver(run, event)

    def _deliver(self, run: RunRecord, event: Event) -> None:
        """Hand a logged event to subscribers (always under the lock, so subscribers see each run's
        events in seq order); events after the terminal one, or seen already, are dropped."""
        with self._lock:
            if run.done or event.seq < run.next_seq:
                return
            run.next_seq = event.seq + 1
            if event.status is not None:
                run.state = event.status
            run.done = event.terminal
            step = getattr(event, "step", None)
            if isinstance(step, int) and event.type != "run_queued":
                run.last_step = step
            run.history.append(event)
            for wanted, callback in list(self._subscribers):
                if wanted is None or wanted == run.run_id:
                    try:
                        callback(event)
                    except Exception:
                        log.exception("event subscriber failed on %s", event.type)

    def _get(self, run_id: str) -> Any:
        try:
            return self._runs[run_id]
        except KeyError:
            raise KeyError(f"no run {run_id!r}") from None

    def state(self, run_id: str) -> RunState:
        with self._lock:
            return self._get(run_id).state

    def _tell_positions(self, holders: Callable[[RunRecord], str | None]) -> None:
        """Tell each waiting run its place (1 = next) and whom it waits for, when that changed."""
        ahead: str | None = None
        for position, run_id in enumerate(self._waiting, start=1):
            run = self._runs[run_id]
            behind = ahead if ahead is not None else holders(run)
            if run.position != position:
                run.position = position
                self._emit(run, RunQueued, position=position, behind=behind)
            ahead = run_id

    def _end_if_queued(self, run: RunRecord, event_cls: type, **fields: Any) -> bool:
        """A run still waiting ends with this event (stopped or killed before it started) and the
        queue moves up; False when the run has already started."""
        if run.run_id not in self._waiting:
            return False
        self._waiting.remove(run.run_id)
        self._emit(run, event_cls, **fields)
        self._schedule()
        return True

    def _stop_waiting(self) -> None:
        """At shutdown: the runs still queued end as stopped (interrupted), so they show why."""
        for run_id in list(self._waiting):
            self._waiting.remove(run_id)
            self._emit(self._runs[run_id], RunStopped, step=0, epoch=0, checkpoint=None, reason="interrupted")

    @abstractmethod
    def _schedule(self) -> None:
        """Start whatever waiting runs can start; tell the rest their position."""


@dataclass
class _Worker:
    """A spawned worker process waiting for its one run (see ``worker.serve_one``)."""

    device: str  # the device slot it is for: "cpu" or "cuda:N"
    process: BaseProcess
    control: ProcessControl
    jobs: Connection
    ready: bool = False

    def is_ready(self) -> bool:
        """Whether it has finished warming up (never blocks)."""
        if not self.ready:
            try:
                self.ready = self.jobs.poll() and self.jobs.recv() == READY
            except (EOFError, OSError):
                return False
        return self.ready

    def discard(self) -> None:
        self.jobs.close()
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)


@dataclass(kw_only=True)
class _Run(RunRecord):
    config: RunConfig
    resource: str  # "cpu", "cuda:N", or "gpu" (any free GPU)
    control: ProcessControl | None = None  # its worker's, once started
    pause_requested: bool = False
    device: str | None = None
    process: BaseProcess | None = None


class LocalExecutor(QueueingExecutor):
    """Runs each run in its own process on this machine.

    ``max_concurrent`` runs share the CPU (default 1); each GPU takes one run at a time. Others
    wait in one FIFO queue and are told their position (run_queued, 1 = next). ``warm`` keeps a
    ready worker process per device slot (default on).
    """

    POLL_S = (0.001, 0.02)  # how often a run's log is read: right after events, then backing off
    REFILL_AFTER_S = 5.0

    def __init__(
        self,
        runs_dir: str | Path,
        *,
        max_concurrent: int = 1,
        gpus: int | None = None,
        num_threads: int | None = None,
        warm: bool = True,
    ) -> None:
        super().__init__(runs_dir)
        self.max_concurrent = max_concurrent
        if gpus is None:
            import torch  # noqa: PLC0415 - only to count devices; CUDA is never initialized here

            gpus = torch.cuda.device_count()
        self.gpus = gpus
        if num_threads is None and max_concurrent > 1:
            # Concurrent CPU runs share the cores instead of each spinning up a full thread pool.
            num_threads = max(1, (os.cpu_count() or 1) // max_concurrent)
        self.num_threads = num_threads
        self.warm = warm
        self._ctx = mp.get_context("spawn")
        self._spares: dict[str, list[_Worker]] = {}
        # Worker processes are not daemons (their DataLoaders may start workers of their own), so
        # an interpreter exiting without shutdown() would wait for every run to end.
        atexit.register(self.shutdown)
        if warm:
            for device in [f"cuda:{i}" for i in range(gpus)] or ["cpu"]:
                self._refill(device)

    # --- the warm pool ------------------------------------------------------------------------------

    def _spawn(self, device: str, *, visible_gpus: str | None = None) -> _Worker:
        parent_end, child_end = self._ctx.Pipe()
        control = ProcessControl(self._ctx)
        process = self._ctx.Process(
            target=serve_one, args=(child_end, control),
            kwargs=dict(server_pid=os.getpid(), num_threads=self.num_threads, visible_gpus=visible_gpus),
            name=f"layerlab-worker-{device}",
        )
        process.start()
        child_end.close()
        return _Worker(device=device, process=process, control=control, jobs=parent_end)

    def _capacity(self, device: str) -> int:
        return self.max_concurrent if device == "cpu" else 1

    def _refill(self, device: str) -> None:
        """Start a spare worker for this device slot unless it has enough."""
        with self._lock:
            spares = self._spares.setdefault(device, [])
            spares[:] = [w for w in spares if w.process.is_alive()]
            if self._closed or len(spares) >= self._capacity(device):
                return
            spares.append(self._spawn(device))

    def _refill_later(self, run: _Run, device: str) -> None:
        """A fresh spare starts when the run's process has exited, or once it has trained for
        ``REFILL_AFTER_S``: its imports would otherwise compete with a short run for the CPU."""

        def later() -> None:
            run.ended.wait(timeout=self.REFILL_AFTER_S)
            self._refill(device)

        threading.Thread(target=later, name=f"refill-{device}", daemon=True).start()

    def _take_worker(self, run: _Run, device: str) -> _Worker:
        """A ready spare for this device if there is one, else a fresh process."""
        if self.warm and run.config.devices == 1:
            spares = self._spares.get(device, [])
            while spares:
                worker = spares.pop(0)
                if worker.process.is_alive():
                    self._refill_later(run, device)
                    return worker
                worker.discard()
        visible: str | None = None
        if run.resource != "cpu" and "," in device:  # a data-parallel run sees exactly its GPUs
            visible = ",".join(d.removeprefix("cuda:") for d in device.split(","))
        return self._spawn(device, visible_gpus=visible)

    def ready_workers(self) -> int:
        """How many spare workers have finished warming up (for benchmarks and status pages)."""
        with self._lock:
            return sum(w.is_ready() for spares in self._spares.values() for w in spares)

    # --- submitting and scheduling --------------------------------------------------------------

    def submit(
        self,
        run_id: str,
        graph: dict[str, Any],
        config: RunConfig | dict[str, Any],
        *,
        resume_from: str | None = None,
        init_from: str | None = None,
        start_seq: int | None = None,
        spec: Any = None,
    ) -> None:
        cfg = config if isinstance(config, RunConfig) else RunConfig.model_validate(config)
        if hasattr(graph, "model_dump"):
            graph = graph.model_dump(mode="json")  # a layerlab.Graph: send plain JSON to the worker
        with self._lock:
            run = self._new_record(_Run, run_id, start_seq=start_seq, graph=graph, spec=spec, config=cfg,
                                   resume_from=resume_from, init_from=init_from,
                                   resource=self._resource_for(cfg.device))
            self._runs[run_id] = run
            self._waiting.append(run_id)
            self._schedule()

    def _resource_for(self, device: str) -> str:
        if device == "cpu" or (device == "auto" and self.gpus == 0):
            return "cpu"
        if device in ("auto", "cuda"):
            return "gpu" if self.gpus else "cpu"  # without GPUs, a 'cuda' run fails fast in its worker
        return device if self.gpus else "cpu"

    def _busy(self) -> list[str]:
        # A run holds its devices until its process has exited (and freed its memory), not
        # merely until its terminal event. A data-parallel run holds "cuda:0,cuda:1".
        return [d for r in self._runs.values() if r.process is not None for d in (r.device or "").split(",")]

    def _free_device(self, resource: str, count: int = 1) -> str | None:
        busy = self._busy()
        if resource == "cpu":  # the ranks of a data-parallel CPU run share one CPU slot
            return "cpu" if busy.count("cpu") < self.max_concurrent else None
        if resource == "gpu" or count > 1:
            free = [f"cuda:{i}" for i in range(self.gpus) if f"cuda:{i}" not in busy]
            return ",".join(free[:count]) if len(free) >= count else None
        return resource if resource not in busy else None

    def _holder(self, run: RunRecord) -> str | None:
        """The running run a waiting run needs the device of (the first one found)."""
        wanted = getattr(run, "resource", "cpu")
        for other in self._runs.values():
            if other.process is not None and (wanted in ("gpu", other.device) or
                                              (wanted == "cpu" and other.device == "cpu")):
                return other.run_id
        return None

    def _schedule(self) -> None:
        """Start whatever can start, in FIFO order; tell the rest their position."""
        with self._lock:
            if self._closed:
                return
            for run_id in list(self._waiting):
                run = self._runs[run_id]
                device = self._free_device(run.resource, run.config.devices)
                if device is not None:
                    self._waiting.remove(run_id)
                    self._start(run, device)
            self._tell_positions(self._holder)

    def _start(self, run: _Run, device: str) -> None:
        run.device = device
        run.position = None
        config = run.config.model_dump(mode="json")
        if run.resource != "cpu":
            config["device"] = "cuda" if "," in device else device  # the executor owns GPU placement
        worker = self._take_worker(run, device)
        run.process, run.control = worker.process, worker.control
        if run.pause_requested:
            worker.control.request_pause()
        if not worker.is_ready():
            self._emit(run, RunStarting, phase="process")
        run.state = "running"
        offset = run.log.size()  # the worker's events come after what is in the log now
        job = Job(run_id=run.run_id, config=config, run_dir=str(run.log.path.parent), start_seq=run.next_seq,
                  graph=run.graph, spec=run.spec, resume_from=run.resume_from, init_from=run.init_from)
        try:
            worker.jobs.send(job)
        except (OSError, ValueError):
            log.exception("could not hand run %s to its worker", run.run_id)
        finally:
            worker.jobs.close()
        run.reader = threading.Thread(target=self._read, args=(run, LogTail(run.log, offset=offset)),
                                      name=f"events-{run.run_id}", daemon=True)
        run.reader.start()

    def _read(self, run: _Run, tail: LogTail) -> None:
        """Deliver what the run's process writes to its log, until the process has exited."""
        assert run.process is not None
        idle, (fastest, slowest) = 0.0, self.POLL_S
        while True:
            alive = run.process.is_alive()  # before reading: whatever it wrote before exiting is read
            events = tail.poll()
            for event in events:
                self._deliver(run, event)
            if not alive:
                break
            idle = fastest if events else min(slowest, max(idle, fastest) * 2)
            time.sleep(idle)
        self._finish(run)

    def _finish(self, run: _Run) -> None:
        """After the process is gone: make sure a terminal event went out, free its slot."""
        with self._lock:
            process = run.process
        if process is None:
            return
        process.join(timeout=5)
        with self._lock:
            if run.process is None:
                return  # finished by another thread meanwhile
            if not run.done:
                if run.killed:
                    self._emit(run, RunFailed, reason="killed", step=run.last_step)
                else:
                    self._emit(run, RunFailed, step=run.last_step,
                               reason=f"the training process exited unexpectedly (exit code {process.exitcode})",
                               hint="it may have run out of memory; try a smaller batch_size")
            process.close()
            run.process = None
            run.ended.set()
            self._schedule()

    # --- controls ---------------------------------------------------------------------------------

    def stop(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id)
            if run.done:
                return
            if self._end_if_queued(run, RunStopped, step=0, epoch=0, checkpoint=None):
                return
            if run.control is not None:
                run.control.request_stop()

    def pause(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id)
            if run.done:
                return
            run.pause_requested = True  # a queued run pauses as soon as it starts
            if run.control is not None:
                run.control.request_pause()

    def resume(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id)
            if run.done:
                return
            run.pause_requested = False
            if run.control is not None:
                run.control.request_resume()

    def kill(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id)
            if run.done:
                return
            if self._end_if_queued(run, RunFailed, reason="killed", step=None):
                return
            run.killed = True
            process = run.process
        if process is not None:
            process.terminate()
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        if run.reader is not None:
            run.reader.join(timeout=5)
        self._finish(run)

    def shutdown(self, *, timeout: float = 10.0) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True  # nothing starts from here on
            atexit.unregister(self.shutdown)
            self._stop_waiting()
            running = [r for r in self._runs.values() if r.process is not None and not r.done]
            for run in running:
                if run.control is not None:
                    run.control.request_stop(interrupted=True)
            spares = [w for ws in self._spares.values() for w in ws]
            self._spares.clear()
        for worker in spares:
            worker.discard()
        deadline = time.monotonic() + timeout
        for run in running:
            if run.reader is not None:
                run.reader.join(timeout=max(0.0, deadline - time.monotonic()))
        for run in running:
            if not run.done:
                self.kill(run.run_id)
