"""Runs on a Ray cluster: the :class:`~layerlab.train.Executor` interface, one Ray actor per run.

Each run is a :class:`RunActor` that asks Ray for ``num_gpus`` (the run's device count on a GPU
cluster, 0 on the CPU). Its ``train`` method is a streaming generator: the trainer's events come
back one by one as they are emitted (numbered in the actor, from the seq the run's log is at), and
a reader thread here writes each to the run's log on this machine before handing it to
subscribers, as the local executor does with the events its workers write. Controls are actor calls that run on a
second thread of the actor and set the same :class:`~layerlab.train.ProcessControl` flags the
local worker uses, so stop, pause and resume behave alike.

Runs wait in one FIFO queue here (not in Ray's scheduler) while the cluster has no free GPU, so
each is told its position (run_queued). A worker or node that dies takes its actor with it: the
stream breaks and the run ends with run_failed.

This module imports ray; ``layerlab.cluster.make_executor`` imports it only when asked for Ray.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from pydantic import ValidationError
from ray.exceptions import RayActorError, RayError

from layerlab.train.config import RunConfig
from layerlab.train.events import Event, RunFailed, RunStarting, RunStopped, parse_event
from layerlab.train.executor import QueueingExecutor, RunRecord

log = logging.getLogger(__name__)

Subscriber = Callable[[Event], None]


class RunActor:
    """One run, inside a Ray worker process. Created per run and killed when the run is over."""

    def __init__(self, *, paused: bool = False) -> None:
        from layerlab.train.control import ProcessControl  # noqa: PLC0415 - in the worker

        self.control = ProcessControl()
        if paused:  # set here, before any control call can arrive, so a later resume always wins
            self.control.request_pause()

    def train(
        self,
        run_id: str,
        graph: dict[str, Any],
        config: dict[str, Any],
        run_dir: str,
        *,
        devices: int = 1,
        gpus: int = 0,
        resume_from: str | None = None,
        init_from: str | None = None,
        num_threads: int | None = None,
        start_seq: int = 0,
        spec: Any = None,
    ) -> Iterator[dict[str, Any]]:
        """Train the run; yields each event (as a plain dict) as soon as the trainer emits it."""
        import torch  # noqa: PLC0415

        from layerlab.cluster.ddp import train_ddp  # noqa: PLC0415
        from layerlab.train.config import RunConfig  # noqa: PLC0415
        from layerlab.train.trainer import train, train_spec  # noqa: PLC0415

        if gpus and torch.cuda.is_available() and str(config.get("device", "auto")) != "cpu":
            # Ray made only this actor's GPUs visible: they are cuda:0 .. cuda:gpus-1 here.
            config = {**config, "device": "cuda"}
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        events: queue.Queue[dict[str, Any] | None] = queue.Queue()

        def sink(event: Event) -> None:
            events.put(event.model_dump())

        def work() -> None:
            try:
                common = dict(run_id=run_id, run_dir=run_dir, control=self.control, resume_from=resume_from,
                              init_from=init_from, start_seq=start_seq)
                if devices > 1:
                    train_ddp(graph, config, emit=sink, devices=devices, **common)
                elif spec is not None:
                    train_spec(spec, RunConfig.model_validate(config), emit=sink, **common)
                else:
                    train(graph, config, emit=sink, **common)
            except BaseException as e:  # the trainer reports its own failures; this is the last resort
                log.exception("run %s crashed", run_id)
                sink(RunFailed(run_id=run_id, reason=f"the worker crashed: {type(e).__name__}: {e}"))
            finally:
                events.put(None)

        thread = threading.Thread(target=work, name=f"train-{run_id}", daemon=True)
        thread.start()
        while (item := events.get()) is not None:
            yield item
        thread.join()

    def stop(self, interrupted: bool = False) -> None:
        self.control.request_stop(interrupted=interrupted)

    def pause(self) -> None:
        self.control.request_pause()

    def resume(self) -> None:
        self.control.request_resume()

    def where(self) -> dict[str, Any]:
        """The node and GPUs this actor was placed on (for logs and tests)."""
        ctx = ray.get_runtime_context()
        return {"node_id": ctx.get_node_id(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()], "pid": os.getpid()}


@dataclass(kw_only=True)
class _Run(RunRecord):
    config: dict[str, Any]
    devices: int
    gpus: int  # GPUs asked of Ray: devices on a GPU run, 0 on the CPU
    actor: Any = None
    pause_requested: bool = False


class RayExecutor(QueueingExecutor):
    """Runs each run as a Ray actor on whatever cluster ``ray.init`` connects to.

    ``address`` is a Ray address (``"ray-head:6379"``, ``"auto"``); ``None`` uses the Ray already
    initialized in this process, or starts a local one. ``max_concurrent`` bounds the runs on
    CPUs (GPU runs are bounded by the cluster's GPUs, counted again whenever the queue is looked
    at, so workers that join later are used). ``cpus_per_run`` is each actor's CPU request.
    """

    def __init__(
        self,
        runs_dir: str | Path,
        *,
        address: str | None = None,
        max_concurrent: int = 1,
        cpus_per_run: float = 1.0,
        num_threads: int | None = None,
        namespace: str = "layerlab",
        poll_s: float = 2.0,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(runs_dir)
        self.max_concurrent = max_concurrent
        self.cpus_per_run = cpus_per_run
        self.num_threads = num_threads
        self._owns_ray = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, namespace=namespace, **(init_kwargs or {}))
            except (ConnectionError, RayError, RuntimeError) as e:
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                raise RuntimeError(f"could not connect to {where}: {e}") from e
            self._owns_ray = True
        self._actor_cls = ray.remote(RunActor)
        self._wake = threading.Event()
        # Queued runs may become startable without any run ending (a worker joins the cluster).
        self._ticker = threading.Thread(target=self._tick, args=(poll_s,), name="ray-executor-queue", daemon=True)
        self._ticker.start()

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
        """Queue a run; ``config.devices`` > 1 trains it data-parallel on that many GPUs of one node
        (or CPU processes)."""
        cfg = config if isinstance(config, RunConfig) else RunConfig.model_validate(config)
        devices = cfg.devices
        if hasattr(graph, "model_dump"):
            graph = graph.model_dump(mode="json")
        with self._lock:
            run = self._new_record(
                _Run, run_id, start_seq=start_seq,
                graph=graph,
                spec=spec,
                config=cfg.model_dump(mode="json"),
                devices=devices,
                gpus=devices if self._wants_gpu(cfg.device) else 0,
                resume_from=None if resume_from is None else str(resume_from),
                init_from=None if init_from is None else str(init_from),
            )
            self._runs[run_id] = run
            too_big = self._too_big(run)
            if too_big is not None:
                self._emit(run, RunFailed, reason=too_big, hint="lower devices, or add a node with that many GPUs")
                return
            self._waiting.append(run_id)
            self._schedule()

    def _cluster_gpus(self) -> tuple[int, int]:
        """(GPUs in the cluster, GPUs of its largest node), alive nodes only."""
        per_node = [int(n.get("Resources", {}).get("GPU", 0)) for n in ray.nodes() if n.get("Alive")]
        return sum(per_node), max(per_node, default=0)

    def _wants_gpu(self, device: str) -> bool:
        if device == "cpu":
            return False
        if device.startswith("cuda"):
            return True
        return self._cluster_gpus()[0] > 0  # auto: a GPU when the cluster has any

    def _too_big(self, run: _Run) -> str | None:
        if run.gpus <= 1:
            return None
        total, largest = self._cluster_gpus()
        if total and run.gpus > largest:
            return (f"devices={run.devices} needs {run.devices} GPUs on one node, but the largest node of the "
                    f"Ray cluster has {largest}")
        return None

    def _can_start(self, run: _Run, gpus_busy: int, cpu_runs: int) -> bool:
        if run.gpus:
            return gpus_busy + run.gpus <= self._cluster_gpus()[0]
        return cpu_runs < self.max_concurrent

    def _schedule(self) -> None:
        """Start what fits, in FIFO order (a run that does not fit holds back the ones behind it,
        so a large run is not starved); tell the rest their position."""
        with self._lock:
            if self._closed:
                return
            active = [r for r in self._runs.values() if r.actor is not None]
            gpus_busy = sum(r.gpus for r in active)
            cpu_runs = sum(1 for r in active if not r.gpus)
            for run_id in list(self._waiting):
                run = self._runs[run_id]
                if not self._can_start(run, gpus_busy, cpu_runs):
                    break
                self._waiting.remove(run_id)
                try:
                    self._start(run)
                except (RayError, ValueError, TypeError) as e:  # Ray refused the actor: this run fails, the queue goes on
                    log.exception("run %s could not start on Ray", run_id)
                    run.actor = None
                    self._emit(run, RunFailed, reason=f"Ray could not start the run: {e}")
                    continue
                gpus_busy += run.gpus
                cpu_runs += 0 if run.gpus else 1
            self._tell_positions(self._holder)

    def _holder(self, run: RunRecord) -> str | None:
        """A running run holding the kind of resource (GPU or CPU slot) this one waits for."""
        wants_gpu = bool(getattr(run, "gpus", 0))
        return next((r.run_id for r in self._runs.values() if r.actor is not None and bool(r.gpus) == wants_gpu),
                    None)

    def _tick(self, poll_s: float) -> None:
        while not self._wake.wait(poll_s):
            with self._lock:
                if self._closed:
                    return
                if not self._waiting:
                    continue
            try:
                self._schedule()
            except RayError:
                log.exception("could not look at the Ray cluster")

    def _start(self, run: _Run) -> None:
        run.position = None
        self._emit(run, RunStarting, phase="process")  # its actor starts now (see docs/deploy.md)
        run.state = "running"
        cpus = self.cpus_per_run * (run.devices if not run.gpus else 1)
        run.actor = self._actor_cls.options(
            num_gpus=run.gpus,
            num_cpus=cpus,
            max_concurrency=4,  # controls run beside the streaming train call
            max_restarts=0,
            name=f"layerlab-run-{run.run_id}-{uuid.uuid4().hex[:8]}",  # unique: a run id may come back
        ).remote(paused=run.pause_requested)
        stream = run.actor.train.options(num_returns="streaming").remote(
            run.run_id, run.graph, run.config, str(self.runs_dir / run.run_id),
            devices=run.devices, gpus=run.gpus, resume_from=run.resume_from, init_from=run.init_from,
            num_threads=self.num_threads, start_seq=run.next_seq, spec=run.spec,
        )
        run.reader = threading.Thread(target=self._read, args=(run, stream), name=f"events-{run.run_id}",
                                      daemon=True)
        run.reader.start()

    def _read(self, run: _Run, stream: Any) -> None:
        """Forward one run's events until its stream ends or breaks, then free its slot."""
        failure: str | None = None
        try:
            for ref in stream:
                data = ray.get(ref)
                try:
                    event = parse_event(data)
                except ValidationError:
                    log.exception("run %s sent an invalid event", run.run_id)
                    continue
                self._record(run, event)
        except RayActorError as e:
            failure = f"the Ray worker running this run died: {type(e).__name__}"
            log.warning("run %s: %s", run.run_id, e)
        except (RayError, ValueError) as e:  # ValueError: Ray was shut down under the stream
            failure = f"Ray failed this run: {type(e).__name__}: {e}"
            log.warning("run %s: %s", run.run_id, e)
        self._finish(run, failure)

    def _finish(self, run: _Run, failure: str | None) -> None:
        with self._lock:
            actor, run.actor = run.actor, None
            if actor is None:
                return
            if not run.done:
                if run.killed:
                    self._emit(run, RunFailed, reason="killed", step=run.last_step)
                else:
                    self._emit(run, RunFailed, step=run.last_step,
                               reason=failure or "the run's stream ended without a final event",
                               hint="its node may have been lost or run out of memory; start the run again "
                                    "(resume from its last checkpoint, if any)")
        with contextlib.suppress(RayError):
            ray.kill(actor, no_restart=True)  # frees its GPUs now, not when garbage collected
        self._schedule()

    # --- controls ---------------------------------------------------------------------------------

    def actor(self, run_id: str) -> Any:
        """The run's actor handle while it runs, else None."""
        with self._lock:
            return self._get(run_id).actor

    def _call(self, run: _Run, method: str, **kwargs: Any) -> None:
        try:
            getattr(run.actor, method).remote(**kwargs)  # fire and forget: the events tell the outcome
        except RayError:
            log.warning("run %s: could not send %s to its actor", run.run_id, method)

    def stop(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id)
            if run.done:
                return
            if self._end_if_queued(run, RunStopped, step=0, epoch=0, checkpoint=None):
                return
            self._call(run, "stop")

    def pause(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id)
            if run.done:
                return
            run.pause_requested = True  # a queued run pauses as soon as it starts
            if run.actor is not None:
                self._call(run, "pause")

    def resume(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id)
            if run.done:
                return
            run.pause_requested = False
            if run.actor is not None:
                self._call(run, "resume")

    def kill(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id)
            if run.done:
                return
            if self._end_if_queued(run, RunFailed, reason="killed", step=None):
                return
            run.killed = True
            actor, reader = run.actor, run.reader
        if actor is not None:
            with contextlib.suppress(RayError):
                ray.kill(actor, no_restart=True)
        if reader is not None:
            reader.join(timeout=30)  # the broken stream ends the reader, which reports 'killed'
        self._finish(run, None)

    def shutdown(self, *, timeout: float = 10.0) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.set()
            self._stop_waiting()
            running = [r for r in self._runs.values() if r.actor is not None and not r.done]
            for run in running:
                self._call(run, "stop", interrupted=True)
            ending = [r for r in self._runs.values() if r.actor is not None and r.done]
        for run in running:
            if run.reader is not None:
                run.reader.join(timeout=timeout)
        for run in running:
            if not run.done:
                self.kill(run.run_id)
        for run in ending:  # over, but their streams have not closed yet: wait for the readers
            if run.reader is not None:
                run.reader.join(timeout=timeout)
        if self._owns_ray:
            ray.shutdown()
