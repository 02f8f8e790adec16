"""The entry point of a run's own process (started with the multiprocessing 'spawn' context).

A worker is started ahead of time, before any run needs it: it imports torch and the trainer,
loads the small built-in datasets and takes one training step on a tiny model, so the first
kernels are ready too. Then it says "ready" on its job pipe and waits for exactly one run. The
run's events go to the run's log (``events.jsonl``, see :class:`~layerlab.train.events.RunLog`),
which the server reads; the control object is checked between batches. After its run the
process exits, so nothing a run leaves behind (memory, threads, CUDA state) reaches another.

Ctrl+C in the server's terminal reaches this process too: it is ignored here, and the server
stops the run gracefully. A worker whose server has died (its parent changed) stops at the next
batch with a checkpoint, and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from .control import ProcessControl
from .events import Emitter, RunFailed, RunLog

log = logging.getLogger(__name__)

READY = "ready"


@dataclass
class Job:
    """One run, as the executor hands it to a waiting worker."""

    run_id: str
    config: dict[str, Any]
    run_dir: str
    start_seq: int
    graph: dict[str, Any]
    spec: Any = None  # a ModelSpec from the server's analysis (the graph is not analysed again)
    resume_from: str | None = None
    init_from: str | None = None


def serve_one(
    jobs: Connection,
    control: ProcessControl,
    *,
    server_pid: int,
    num_threads: int | None,
    visible_gpus: str | None = None,
) -> None:
    """Get ready, wait for one run, train it, return."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops runs gracefully on Ctrl+C
    if visible_gpus is not None:  # before torch initialises CUDA
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_gpus
    logging.basicConfig(level=logging.WARNING, format="[worker %(process)d] %(levelname)s %(name)s: %(message)s")
    _watch_parent(server_pid, control)
    import torch  # noqa: PLC0415 - imported in the child, after spawn

    if num_threads is not None:
        torch.set_num_threads(num_threads)
    datasets = _warm_up()
    with contextlib.suppress(OSError):  # the executor may have handed over a run and let go of its end
        jobs.send(READY)
    try:
        job: Job = jobs.recv()
    except (EOFError, OSError):
        return  # the server went away before giving us a run
    finally:
        jobs.close()
    run_job(job, control, num_threads=num_threads, datasets=datasets)


def run_job(job: Job, control: ProcessControl, *, num_threads: int | None, datasets: Any = None) -> None:
    """Train one run; every outcome is an event in its log."""
    events = RunLog(job.run_dir)
    events.hold()  # until this process exits: the server can tell a worker still writing
    emitter_seq = job.start_seq
    try:
        from .trainer import train, train_spec  # noqa: PLC0415

        devices = int(job.config.get("devices", 1))
        common = dict(run_id=job.run_id, run_dir=job.run_dir, control=control, resume_from=job.resume_from,
                      init_from=job.init_from, start_seq=job.start_seq)
        if devices > 1:
            from ..cluster.ddp import train_ddp  # noqa: PLC0415

            train_ddp(job.graph, job.config, emit=events.append, devices=devices, num_threads=num_threads,
                      **common)
        elif job.spec is not None:
            from .config import RunConfig  # noqa: PLC0415

            train_spec(job.spec, RunConfig.model_validate(job.config), emit=events.append, datasets=datasets,
                       **common)
        else:
            train(job.graph, job.config, emit=events.append, datasets=datasets, **common)
    except BaseException as e:  # the trainer reports its own failures; this is the last resort
        log.error("worker crashed: %s", traceback.format_exc())
        last = events.read()
        if not last or not last[-1].terminal:
            emitter_seq = max(emitter_seq, last[-1].seq + 1 if last else 0)
            Emitter(job.run_id, events.append, start_seq=emitter_seq).emit(
                RunFailed, reason=f"the worker crashed: {type(e).__name__}: {e}")
    finally:
        events.close()


def _watch_parent(server_pid: int, control: ProcessControl) -> None:
    """When the server is gone (this process was handed to another parent), stop the run at the
    next batch as if the server had asked: a checkpoint, run_stopped (interrupted), exit."""

    def watch() -> None:
        while os.getppid() == server_pid:
            time.sleep(0.2)
        control.request_stop(interrupted=True)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _warm_up() -> Any:
    """Import what a run needs and take two steps on a tiny model, so a run's own first step does
    not pay for lazy initialisation. Returns the preloaded datasets."""
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    started = time.monotonic()
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(8, 1, 4, 4), torch.randint(0, 3, (8,))
    for _ in range(2):
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    with torch.inference_mode():
        model.eval()(x)
    from layerlab import compile as _compile  # noqa: F401, PLC0415 - the compiler's imports (torch.fx)

    from . import trainer as _trainer  # noqa: F401, PLC0415

    datasets = Preloaded()
    log.debug("warm in %.2f s", time.monotonic() - started)
    return datasets


class Preloaded:
    """The built-in datasets that are read from a file (a few MB in all), read once per worker
    process: they depend on neither the seed nor any setting. Anything else loads as usual."""

    def __init__(self) -> None:
        from .config import DataConfig  # noqa: PLC0415
        from .data import DatasetError, load_dataset  # noqa: PLC0415
        from .datasets import REGISTRY  # noqa: PLC0415

        self._load = load_dataset
        self.sets: dict[str, Any] = {}
        for name, entry in REGISTRY.items():
            if entry.synthetic or entry.settings:
                continue
            try:
                self.sets[name] = load_dataset(DataConfig(dataset=name), seed=0)
            except DatasetError:  # a package it needs is not installed: the run will say so
                continue

    def load(self, cfg: Any, *, seed: int) -> Any:
        if cfg.dataset in self.sets:
            return self.sets.pop(cfg.dataset)  # one run per process: hand it over
        return self._load(cfg, seed=seed)
