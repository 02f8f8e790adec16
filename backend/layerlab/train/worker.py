"""The entry point of a run's own process (started with the multiprocessing 'spawn' context).

Events go back to the parent through a multiprocessing queue as plain dicts; the parent
validates them into the event union again. The control object is checked between batches.
"""

from __future__ import annotations

import logging
import os
import traceback
from multiprocessing.queues import Queue
from typing import Any

from .control import ProcessControl
from .events import Event, RunFailed

log = logging.getLogger(__name__)


def run_worker(
    run_id: str,
    graph: dict[str, Any],
    config: dict[str, Any],
    run_dir: str,
    events: Queue,
    control: ProcessControl,
    resume_from: str | None,
    init_from: str | None,
    num_threads: int | None,
    visible_gpus: str | None = None,
) -> None:
    """Train one run and return; every outcome is reported as an event on ``events``."""
    logging.basicConfig(level=logging.WARNING, format=f"[run {run_id}] %(levelname)s %(name)s: %(message)s")

    def sink(event: Event) -> None:
        events.put(event.model_dump())

    if visible_gpus is not None:  # before torch initialises CUDA
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_gpus
    try:
        import torch  # noqa: PLC0415 - imported in the child, after spawn

        from .trainer import train  # noqa: PLC0415

        if num_threads is not None:
            torch.set_num_threads(num_threads)
        devices = int(config.get("devices", 1))
        if devices > 1:
            from ..cluster.ddp import train_ddp  # noqa: PLC0415

            train_ddp(graph, config, emit=sink, devices=devices, run_id=run_id, run_dir=run_dir,
                      control=control, resume_from=resume_from, init_from=init_from, num_threads=num_threads)
        else:
            train(graph, config, emit=sink, run_id=run_id, run_dir=run_dir, control=control,
                  resume_from=resume_from, init_from=init_from)
    except BaseException as e:  # the trainer reports its own failures; this is the last resort
        log.error("worker crashed: %s", traceback.format_exc())
        sink(RunFailed(run_id=run_id, reason=f"the worker crashed: {type(e).__name__}: {e}"))
    finally:
        events.close()
        events.join_thread()  # flush every event into the pipe before the process exits
