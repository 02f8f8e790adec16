"""CPU-bound request work (reports, exports, training scripts, run checks) in worker processes, off the event loop.

A thread would still share the GIL with the event loop: 20 concurrent reports on a 300-node graph
made ``GET /api/catalog`` wait ~0.7 s. Here the loop only moves bytes: the request body goes to a
worker process as it came, and the answer comes back ready to send. At most ``workers`` jobs run
at once, at most ``max_pending`` wait behind them (past that a 503), and ``shutdown`` ends the
workers at once, whatever they are doing.

An app has two pools: one for the editor's reports, whose workers never import torch, and one for
the jobs that load torch (run checks, training-script text, exports). A report is asked for on
every edit; it must not queue behind a worker's first ``import torch`` (seconds).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)
T = TypeVar("T")


class ServerBusyError(HTTPException):
    """Every worker is busy and the line is full."""

    def __init__(self) -> None:
        super().__init__(503, "the server is busy: too many reports, exports or run checks at once",
                         headers={"Retry-After": "1"})


class CpuPool:
    """A pool of worker processes for one app (started with the app, ended with it)."""

    def __init__(self, workers: int, *, max_pending: int) -> None:
        self.workers = workers
        self.max_pending = max_pending
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending = 0

    def start(self) -> None:
        # spawn, not fork: the server has threads (the event writer, executors) a fork would copy mid-step
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_warm)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker; ``fn`` and its arguments must pickle (module-level, plain data)."""
        self._enter()
        try:
            return await asyncio.wrap_future(self._executor().submit(fn, *args))
        finally:
            self._leave()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """The same from a synchronous route (a thread of the server's pool): blocks that thread only."""
        self._enter()
        try:
            return self._executor().submit(fn, *args).result()
        finally:
            self._leave()

    def shutdown(self, *, timeout: float = 2.0) -> None:
        """Stop now: queued jobs are cancelled and running workers terminated, not waited for. When it
        returns, every job's future is settled (cancelled, or failed with BrokenProcessPool); the
        whole takes at most about ``timeout`` seconds, whatever the jobs were doing."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        deadline = time.monotonic() + timeout
        processes = list((getattr(pool, "_processes", None) or {}).values())
        # the executor's own thread: it settles the futures once it sees the workers gone
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(timeout=0.5)
        if manager is not None:
            manager.join(timeout=max(0.1, deadline - time.monotonic()))
            if manager.is_alive():
                log.warning("a worker pool's manager thread did not end within %.1f s", timeout)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            raise ServerBusyError()  # shutting down
        return self._pool

    def _enter(self) -> None:
        with self._lock:
            if self._pending >= self.workers + self.max_pending:
                raise ServerBusyError()
            self._pending += 1

    def _leave(self) -> None:
        with self._lock:
            self._pending -= 1


class _Worker:
    """What one worker process keeps between jobs: the shapes stage's memo (``memo.py``), so the
    editor's next report of a graph that changed in one place redoes only that place."""

    memo: Any = None
    grown = 0  # objects the GC tracks that were added since the last full collection (about)
    collect_at = 0  # a full collection once ``grown`` passes this: the objects there were then


def _settle() -> None:
    """After a report, move every object the worker holds (the memo, mostly: hundreds of thousands
    of objects once it is full) to the cyclic GC's permanent generation. The GC then never traces
    them again; left to itself it traced them all every few hundred reports, a pause of 100 ms
    and more before the next answer. Objects are still freed as usual when nothing refers to them.

    Reports make no reference cycles (tests/test_memo.py checks), so a collection would free
    nothing. Should cycles appear all the same, a full collection runs once the objects added since
    the last one outnumber those there were then (as the GC counts them: each report's new objects
    less those it freed): while the memo fills, a few times in a worker's life; once it is full,
    its new entries take the place of old ones."""
    _Worker.grown += gc.get_count()[0]
    if _Worker.grown > _Worker.collect_at:
        _collect_and_freeze()
    else:
        gc.freeze()


def _collect_and_freeze() -> None:
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _Worker.grown, _Worker.collect_at = 0, max(100_000, gc.get_freeze_count())


def _warm() -> None:
    """Each worker imports the analysis once, not on its first request. It ends
    itself when the server is gone: killed with SIGKILL, the server cannot end its workers, and a
    worker waiting for its next job would wait forever."""
    import layerlab.shapes  # noqa: F401
    from layerlab.lifeline import exit_with_parent

    exit_with_parent()
    _collect_and_freeze()  # what the imports made, before the first job rather than in it


# --- the jobs (module-level, so a worker process can import them; this module imports no torch) ---


def report_json(body: bytes, batch_size: int, optimizer: Any) -> bytes:
    """``POST /api/graphs/report``: the request body in, the response body out."""
    from layerlab.memo import ShapeMemo
    from layerlab.shapes import report_json as analyse_to_json

    if _Worker.memo is None:  # made by the first report: a worker of the torch jobs has none
        _Worker.memo = ShapeMemo()
    try:
        return analyse_to_json(body, batch_size=batch_size, optimizer=optimizer, memo=_Worker.memo)
    finally:
        _settle()


def export_file(data: Any, fmt: str, config: Any, max_build_bytes: int | None) -> Any:
    """``POST /api/export`` and a run's export: an :class:`~layerlab.export.Exported`."""
    from layerlab.export import export_graph

    return export_graph(data, fmt, config=config, max_build_bytes=max_build_bytes)


def script_view_text(graph: Any, config: Any) -> tuple[str, dict[str, list[int]]]:
    """``POST /api/graphs/script``: the training script's text and the lines of each node."""
    from layerlab.script import script_sections

    script = script_sections(graph, config)
    return script.text(), script.node_lines()
