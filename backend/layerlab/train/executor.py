"""Executors run training runs somewhere and stream their events back.

:class:`Executor` is the interface the API talks to; :class:`LocalExecutor` runs each run in its
own spawned process on this machine, one run per GPU (and ``max_concurrent`` on the CPU), queues
the rest, and forwards events to subscribers. A cluster executor (Ray) can implement the same
interface without touching the trainer: the trainer only needs ``emit`` and a ``Control``.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import os
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from .config import RunConfig
from .control import ProcessControl
from .events import (
    Event,
    RunFailed,
    RunQueued,
    RunStopped,
    is_terminal,
    parse_event,
)
from .worker import run_worker

log = logging.getLogger(__name__)

RunState = Literal["queued", "running", "paused", "finished", "stopped", "failed"]
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
    ) -> None:
        """Queue a run. ``resume_from`` continues a checkpoint (same graph); ``init_from`` starts
        from another run's weights (fine-tuning, the new graph's freezing applies). ``start_seq``
        numbers its first event (a run continued after a restart goes on from its stored events);
        by default a resubmitted run id continues from its last seq here, a new one starts at 0."""

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
        """Stop every run (gracefully for up to ``timeout`` seconds, then kill) and release resources."""

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
    resume_from: str | None = None
    init_from: str | None = None
    seq: int = 0
    state: RunState = "queued"
    position: int | None = None
    reader: threading.Thread | None = None
    last_step: int | None = None
    killed: bool = False
    done: bool = False  # a terminal event was delivered
    history: list[Event] = field(default_factory=list)


# The state each event puts its run in (events not listed leave it as it is).
STATE_AFTER: dict[str, RunState] = {
    "run_started": "running",
    "run_resumed": "running",
    "run_paused": "paused",
    "run_finished": "finished",
    "run_stopped": "stopped",
    "run_failed": "failed",
}


class QueueingExecutor(Executor):
    """The bookkeeping every executor shares: runs by id, one FIFO of waiting runs, subscribers,
    and delivery of each run's events in seq order with the state they imply."""

    def __init__(self) -> None:
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

    def _deliver(self, run: RunRecord, event: Event) -> None:
        """Stamp the run's next seq and hand the event to subscribers (always under the lock, so
        subscribers see each run's events in seq order)."""
        with self._lock:
            if run.done:
                return  # nothing after a terminal event (e.g. late events of a killed process)
            event = event.model_copy(update={"seq": run.seq})
            run.seq += 1
            kind = event.type
            if kind in STATE_AFTER:
                run.state = STATE_AFTER[kind]
                run.done = is_terminal(event)
            elif kind in ("step", "epoch", "layer_stats"):
                run.last_step = event.step  # type: ignore[union-attr]
            run.history.append(event)
            for wanted, callback in list(self._subscribers):
                if wanted is None or wanted == run.run_id:
                    try:
                        callback(event)
                    except Exception:
                        log.exception("event subscriber failed on %s", kind)

    def _get(self, run_id: str) -> Any:
        try:
            return self._runs[run_id]
        except KeyError:
            raise KeyError(f"no run {run_id!r}") from None

    def state(self, run_id: str) -> RunState:
        with self._lock:
            return self._get(run_id).state

    def _end_if_queued(self, run: RunRecord, event: Event) -> bool:
        """A run still waiting ends with ``event`` (stopped or killed before it started) and the
        queue moves up; False when the run has already started."""
        if run.run_id not in self._waiting:
            return False
        self._waiting.remove(run.run_id)
        self._deliver(run, event)
        self._schedule()
        return True

    @abstractmethod
    def _schedule(self) -> None:
        """Start whatever waiting runs can start; tell the rest their position."""


@dataclass(kw_only=True)
class _Run(RunRecord):
    config: RunConfig
    resource: str  # "cpu", "cuda:N", or "gpu" (any free GPU)
    control: ProcessControl
    device: str | None = None
    process: BaseProcess | None = None
    queue: Queue | None = None


class LocalExecutor(QueueingExecutor):
    """Runs each run in its own process on this machine.

    ``max_concurrent`` runs share the CPU (default 1); each GPU takes one run at a time. Others
    wait in one FIFO queue and are told their position (run_queued, 1 = next).
    """

    def __init__(
        self,
        runs_dir: str | Path,
        *,
        max_concurrent: int = 1,
        gpus: int | None = None,
        num_threads: int | None = None,
    ) -> None:
        self.runs_dir = Path(runs_dir)
        self.max_concurrent = max_concurrent
        if gpus is None:
            import torch  # noqa: PLC0415 - only to count devices; CUDA is never initialized here

            gpus = torch.cuda.device_count()
        self.gpus = gpus
        if num_threads is None and max_concurrent > 1:
            # Concurrent CPU runs share the cores instead of each spinning up a full thread pool.
            num_threads = max(1, (os.cpu_count() or 1) // max_concurrent)
        self.num_threads = num_threads
        super().__init__()
        self._ctx = mp.get_context("spawn")
        # Worker processes are not daemons (their DataLoaders may start workers of their own), so
        # an interpreter exiting without shutdown() would wait for every run to end.
        atexit.register(self.shutdown)

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
    ) -> None:
        cfg = config if isinstance(config, RunConfig) else RunConfig.model_validate(config)
        if hasattr(graph, "model_dump"):
            graph = graph.model_dump(mode="json")  # a layerlab.Graph: send plain JSON to the worker
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is shut down")
            previous = self._runs.get(run_id)
            if previous is not None and not previous.done:
                raise ValueError(f"run {run_id!r} is already {previous.state}")
            run = _Run(
                run_id=run_id,
                graph=graph,
                config=cfg,
                resume_from=resume_from,
                init_from=init_from,
                resource=self._resource_for(cfg.device),
                control=ProcessControl(self._ctx),
                seq=start_seq if start_seq is not None else previous.seq if previous is not None else 0,
            )
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
            for position, run_id in enumerate(self._waiting, start=1):
                run = self._runs[run_id]
                if run.position != position:
                    run.position = position
                    self._deliver(run, RunQueued(run_id=run_id, position=position))

    def _start(self, run: _Run, device: str) -> None:
        run.device = device
        run.position = None
        run.state = "running"
        config = run.config.model_dump(mode="json")
        visible: str | None = None
        if run.resource != "cpu" and "," in device:
            # a data-parallel run sees exactly its GPUs, as cuda:0..N-1
            visible = ",".join(d.removeprefix("cuda:") for d in device.split(","))
            config["device"] = "cuda"
        elif run.resource != "cpu":
            config["device"] = device  # the executor owns GPU placement
        run_dir = self.runs_dir / run.run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        run.queue = self._ctx.Queue()
        run.process = self._ctx.Process(
            target=run_worker,
            args=(run.run_id, run.graph, config, str(run_dir), run.queue, run.control, run.resume_from,
                  run.init_from, self.num_threads, visible),
            name=f"layerlab-run-{run.run_id}",
        )
        run.process.start()
        run.reader = threading.Thread(target=self._read, args=(run,), name=f"events-{run.run_id}", daemon=True)
        run.reader.start()

    def _read(self, run: _Run) -> None:
        """Forward one run's events until its process has exited and the queue is drained."""
        assert run.queue is not None and run.process is not None
        while not run.killed:
            try:
                data = run.queue.get(timeout=0.1)
            except queue.Empty:
                if not run.process.is_alive():
                    break  # the worker flushed its queue before exiting: nothing more will come
                continue
            except (EOFError, OSError):
                break
            try:
                event = parse_event(data)
            except ValidationError:
                log.exception("run %s sent an invalid event", run.run_id)
                continue
            self._deliver(run, event)
        if not run.killed:
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
                    self._deliver(run, RunFailed(run_id=run.run_id, reason="killed", step=run.last_step))
                else:
                    code = run.process.exitcode
                    self._deliver(run, RunFailed(
                        run_id=run.run_id, step=run.last_step,
                        reason=f"the training process exited unexpectedly (exit code {code})",
                        hint="it may have run out of memory; try a smaller batch_size",
                    ))
            run.process.close()
            run.process = None
            if run.queue is not None:
                run.queue.close()
                run.queue.cancel_join_thread()
                run.queue = None
            self._schedule()

    # --- controls ---------------------------------------------------------------------------------

    def stop(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id)
            if run.done:
                return
            if self._end_if_queued(run, RunStopped(run_id=run_id, step=0, epoch=0, checkpoint=None)):
                return
            run.control.request_stop()

    def pause(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id)
            if not run.done:
                run.control.request_pause()  # a queued run pauses as soon as it starts

    def resume(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id)
            if not run.done:
                run.control.request_resume()

    def kill(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id)
            if run.done:
                return
            if self._end_if_queued(run, RunFailed(run_id=run_id, reason="killed", step=None)):
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
            run.reader.join(timeout=1)
        self._finish(run)

    def shutdown(self, *, timeout: float = 10.0) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True  # nothing starts from here on
            atexit.unregister(self.shutdown)
            for run_id in list(self._waiting):
                self._waiting.remove(run_id)
                self._deliver(self._runs[run_id], RunStopped(run_id=run_id, step=0, epoch=0, checkpoint=None))
            running = [r for r in self._runs.values() if r.process is not None and not r.done]
            for run in running:
                run.control.request_stop()
        for run in running:
            if run.reader is not None:
                run.reader.join(timeout=timeout)
        for run in running:
            if not run.done:
                self.kill(run.run_id)
