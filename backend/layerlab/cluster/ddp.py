"""Data-parallel training of one run on several devices with torch DistributedDataParallel.

``train_ddp(graph, config, emit=..., devices=N)`` starts N processes on this machine (gloo on the
CPU, NCCL on GPUs), each running the ordinary :class:`~layerlab.train.Trainer` with three
changes made by :class:`DDPTrainer`:

- the model is wrapped in DistributedDataParallel, which averages gradients across ranks;
- every rank draws the same batch (same seed, same order) and trains on its own slice of it, so
  a step sees the whole ``batch_size`` and steps, epochs and schedules match a one-device run;
- controls (stop, pause) and validation results are decided by rank 0 and broadcast, so every
  rank takes the same branch and none waits forever in a collective.

Only rank 0 emits events and writes checkpoints; its checkpoint holds the unwrapped model's
weights, which load into the single-process model as they are.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import socket
import threading
import time
import traceback
from datetime import timedelta
from multiprocessing.context import SpawnContext
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from layerlab.lifeline import exit_with_parent
from layerlab.train.config import RunConfig
from layerlab.train.control import Control, ProcessControl
from layerlab.train.data import Batches
from layerlab.train.events import Emit, Emitter, Event, RunFailed, is_terminal, parse_event
from layerlab.train.spec import RunSetupError, spec_from_graph
from layerlab.train.trainer import Trainer

log = logging.getLogger(__name__)

Backend = Literal["gloo", "nccl"]


class ShardedBatches(Batches):
    """Every rank iterates the same batches and keeps its own slice ``[rank::world]`` of each.

    The slices of one batch are disjoint and together make the whole batch, so the averaged
    gradient is the full batch's (exactly so when the batch divides evenly). A batch smaller
    than the world is given whole to every rank rather than leaving a rank with nothing.
    """

    def __init__(self, inner: Batches, *, rank: int, world: int) -> None:
        self.inner = inner
        self.rank = rank
        self.world = world
        self.generator = inner.generator

    def __len__(self) -> int:
        return len(self.inner)

    def epoch(self, skip: int = 0):  # noqa: ANN201 - same iterator type as Batches.epoch
        for xb, yb in self.inner.epoch(skip):
            if len(yb) < self.world:
                yield xb, yb
            else:
                yield xb[self.rank :: self.world], yb[self.rank :: self.world]  # (B / world, ...)


class DistControl(Control):
    """Rank 0's control, broadcast to every rank (over a CPU gloo group, so no GPU sync).

    The trainer asks ``pause_requested`` and then ``stop_requested`` before each batch. Each
    ``pause_requested`` broadcasts both flags and keeps the stop flag for the next
    ``stop_requested``; the ranks make the same calls in the same order, so they stay in step.
    """

    def __init__(self, inner: Control | None, *, rank: int, group: Any) -> None:
        self.inner = inner or Control()
        self.rank = rank
        self.group = group
        self._stop: bool | None = None

    def _broadcast(self, step: int) -> tuple[bool, bool]:
        flags = torch.zeros(2, dtype=torch.uint8)
        if self.rank == 0:
            flags[0] = int(self.inner.pause_requested(step))
            flags[1] = int(self.inner.stop_requested(step))
        dist.broadcast(flags, src=0, group=self.group)
        return bool(flags[0]), bool(flags[1])

    def pause_requested(self, step: int) -> bool:
        pause, self._stop = self._broadcast(step)
        return pause

    def stop_requested(self, step: int) -> bool:
        if self._stop is not None:
            stop, self._stop = self._stop, None
            return stop
        return self._broadcast(step)[1]

    def wait_while_paused(self, timeout: float) -> None:
        if self.rank == 0:  # the others wait in the next broadcast
            self.inner.wait_while_paused(timeout)


class DDPTrainer(Trainer):
    """The trainer, data-parallel: see the module docstring for what changes."""

    def __init__(self, *args: Any, rank: int, world: int, control_group: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rank = rank
        self.world = world
        self.control = DistControl(self.control, rank=rank, group=control_group)
        self.control_group = control_group

    def _setup(self) -> None:
        super()._setup()
        self.train_batches = ShardedBatches(self.train_batches, rank=self.rank, world=self.world)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # DDP broadcasts rank 0's weights and buffers at construction (and buffers before each
        # forward), so every rank starts, and stays, identical.
        ddp = DistributedDataParallel(self.model, device_ids=device_ids)
        self.compiled = torch.compile(ddp) if self.cfg.compile else ddp  # type: ignore[assignment]

    def _validate(self) -> tuple[float | None, float | None]:
        # Every rank validates (DDP's forward is a collective); rank 0's figures are broadcast so
        # that early stopping takes the same decision everywhere.
        val_loss, val_acc = super()._validate()
        if val_loss is None:
            return None, None
        figures = torch.tensor([val_loss, -1.0 if val_acc is None else val_acc], dtype=torch.float64)
        dist.broadcast(figures, src=0, group=self.control_group)
        return float(figures[0]), (None if val_acc is None else float(figures[1]))

    def _checkpoint(self, reason: Literal["epoch", "final", "stop"]) -> Path:
        if self.rank == 0:
            return super()._checkpoint(reason)  # self.model is the unwrapped module
        return self.run_dir / "checkpoints" / f"step-{self.step:07d}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pick_backend(config: RunConfig, devices: int) -> tuple[Backend, list[str]]:
    """The process-group backend and each rank's device for ``config.device`` and ``devices``."""
    wants_cuda = config.device.startswith("cuda") or (config.device == "auto" and torch.cuda.is_available())
    if not wants_cuda:
        return "gloo", ["cpu"] * devices
    available = torch.cuda.device_count()
    if available < devices:
        raise RunSetupError(
            f"devices={devices} needs {devices} CUDA devices but {available} are visible here",
            hint=f"set devices to at most {available}, or device to 'cpu'",
        )
    return "nccl", [f"cuda:{i}" for i in range(devices)]


def _rank_main(
    rank: int,
    world: int,
    *,
    backend: Backend,
    device: str,
    address: str,
    run_id: str,
    graph: dict[str, Any],
    config: dict[str, Any],
    run_dir: str,
    events: Any,
    control: ProcessControl | None,
    resume_from: str | None,
    init_from: str | None,
    start_seq: int,
    num_threads: int | None,
    timeout_s: float,
    parent_pid: int,
) -> None:
    """One rank's process: join the group, train, leave. Only rank 0 sends events."""
    logging.basicConfig(level=logging.WARNING, format=f"[run {run_id} rank {rank}] %(levelname)s %(name)s: %(message)s")
    exit_with_parent(parent_pid)

    def sink(event: Event) -> None:
        if event.type == "run_started":  # say that this run is data-parallel, and on what
            event = event.model_copy(update={"device": f"{event.device} x{world} (ddp, {backend})"})
        elif event.type == "step":  # the ranks move in lockstep: the run's rate is world x rank 0's
            event = event.model_copy(update={"samples_per_s": event.samples_per_s * world})
        events.put(event.model_dump())

    emit: Emit = sink if rank == 0 else (lambda event: None)
    emitter = Emitter(run_id, emit, start_seq=start_seq)
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        cfg = RunConfig.model_validate({**config, "device": device})
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group(backend, init_method=f"tcp://{address}", rank=rank, world_size=world,
                                timeout=timedelta(seconds=timeout_s))
        control_group = dist.new_group(backend="gloo") if backend != "gloo" else dist.group.WORLD
        try:
            spec = spec_from_graph(graph, cfg)
            DDPTrainer(spec, cfg, emitter=emitter, run_dir=Path(run_dir), control=control, resume_from=resume_from,
                       init_from=init_from, rank=rank, world=world, control_group=control_group).run()
        finally:
            dist.destroy_process_group()
    except RunSetupError as e:
        emitter.emit(RunFailed, reason=e.reason, hint=e.hint, node=e.node, errors=e.errors, step=None)
    except BaseException as e:  # the trainer reports its own failures; this is the last resort
        log.error("rank %d crashed: %s", rank, traceback.format_exc())
        emitter.emit(RunFailed, reason=f"data-parallel rank {rank} crashed: {type(e).__name__}: {e}")
    finally:
        if rank == 0:
            events.close()
            events.join_thread()  # flush every event into the pipe before the process exits


class _ControlBridge:
    """Forwards an in-process :class:`Control` to rank 0's ProcessControl by polling it."""

    def __init__(self, control: Control, target: ProcessControl) -> None:
        self.control = control
        self.target = target
        self.step = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ddp-control", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        paused = False
        while not self.done.wait(0.05):
            if self.control.stop_requested(self.step):
                self.target.request_stop()
            pause = self.control.pause_requested(self.step)
            if pause and not paused:
                self.target.request_pause()
            elif paused and not pause:
                self.target.request_resume()
            paused = pause

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=1)


def train_ddp(
    graph: Any,
    config: RunConfig | dict[str, Any],
    *,
    emit: Emit,
    devices: int,
    run_id: str = "run",
    run_dir: str | Path = ".layerlab/runs/run",
    control: Control | None = None,
    resume_from: str | Path | None = None,
    init_from: str | Path | None = None,
    start_seq: int = 0,
    num_threads: int | None = None,
    timeout_s: float = 1800.0,
) -> Event:
    """Train one run on ``devices`` local devices; like ``layerlab.train.train``, every outcome is
    an event (rank 0's), and the terminal one is returned. Blocks until every rank has exited.

    ``control`` may be a :class:`ProcessControl` (handed to rank 0 as it is) or any
    :class:`Control` (polled every 50 ms). ``timeout_s`` bounds each collective, so a rank that
    dies without its peers noticing fails the run after that long at most.
    """
    if devices < 1:
        raise ValueError(f"devices must be at least 1; received {devices}")
    if hasattr(graph, "model_dump"):
        graph = graph.model_dump(mode="json")
    last: dict[str, Event] = {}

    def forward(event: Event) -> None:
        last["event"] = event
        emit(event)

    emitter = Emitter(run_id, forward, start_seq=start_seq)
    try:
        cfg = config if isinstance(config, RunConfig) else RunConfig.model_validate(config)
        backend, rank_devices = pick_backend(cfg, devices)
    except RunSetupError as e:
        return emitter.emit(RunFailed, reason=e.reason, hint=e.hint, node=e.node, errors=e.errors)
    except Exception as e:
        return emitter.emit(RunFailed, reason=f"the run could not start: {e}", hint="check the run configuration")
    if num_threads is None and backend == "gloo":
        num_threads = max(1, (os.cpu_count() or 1) // devices)  # the ranks share the CPU cores

    ctx: SpawnContext = mp.get_context("spawn")
    events = ctx.Queue()
    rank0_control = control if isinstance(control, ProcessControl) else ProcessControl(ctx)
    bridge = _ControlBridge(control, rank0_control) if control is not None and control is not rank0_control else None
    address = f"127.0.0.1:{free_port()}"
    config_json = cfg.model_dump(mode="json")
    procs = [
        ctx.Process(
            target=_rank_main,
            args=(rank, devices),
            kwargs=dict(backend=backend, device=rank_devices[rank], address=address, run_id=run_id, graph=graph,
                        config=config_json, run_dir=str(run_dir), events=events if rank == 0 else None,
                        control=rank0_control if rank == 0 else None,
                        resume_from=None if resume_from is None else str(resume_from),
                        init_from=None if init_from is None else str(init_from),
                        start_seq=start_seq, num_threads=num_threads, timeout_s=timeout_s,
                        parent_pid=os.getpid()),
            name=f"layerlab-run-{run_id}-rank{rank}",
        )
        for rank in range(devices)
    ]
    for p in procs:
        p.start()
    finished = False
    try:
        _pump(procs, events, forward, bridge)
        finished = True
    finally:
        for p in procs:
            p.join(timeout=15 if finished else 0)  # the others leave the group right after rank 0
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
        if bridge is not None:
            bridge.close()
        events.close()
        events.cancel_join_thread()
    terminal = last.get("event")
    if terminal is None or not is_terminal(terminal):
        dead = [f"rank {r} (exit code {p.exitcode})" for r, p in enumerate(procs) if p.exitcode not in (0, None)]
        step = getattr(terminal, "step", None)
        terminal = Emitter(run_id, forward, start_seq=(terminal.seq + 1) if terminal else start_seq).emit(
            RunFailed, step=step,
            reason="a data-parallel process exited unexpectedly: " + (", ".join(dead) or "no terminal event"),
            hint="it may have run out of memory; try a smaller batch_size",
        )
    return terminal


def _pump(procs: list[Any], events: Any, forward: Emit, bridge: _ControlBridge | None) -> None:
    """Forward rank 0's events until it is done; end the run if any rank dies on its own."""
    grace_until: float | None = None
    while True:
        try:
            data = events.get(timeout=0.1)
        except queue.Empty:
            if not procs[0].is_alive():
                return  # rank 0 flushed its queue before exiting: nothing more will come
            crashed = any(p.exitcode not in (None, 0) for p in procs[1:])
            if crashed and grace_until is None:
                grace_until = time.monotonic() + 10.0  # rank 0 usually notices at its next collective
            if grace_until is not None and time.monotonic() > grace_until:
                return
            continue
        except (EOFError, OSError):
            return
        event = parse_event(data)
        if bridge is not None and hasattr(event, "step") and event.step is not None:
            bridge.step = event.step
        forward(event)
        if is_terminal(event):
            return


__all__ = ["DDPTrainer", "DistControl", "ShardedBatches", "pick_backend", "train_ddp"]
