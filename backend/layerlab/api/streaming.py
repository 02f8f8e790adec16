"""Events on their way out: batched persistence and fan-out to websocket clients.

Every event goes first to the :class:`EventWriter` (buffered, written in batches by one thread),
then to the :class:`EventHub`, which hands it to each watcher's bounded queue. A watcher that
falls too far behind is dropped with a ``resync`` message; it never slows the run or the others.
Because an event is buffered before it is published, a watcher that subscribes first and then
reads the buffer and the database sees every event at least once (it drops duplicates by seq).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from .db import Database, Run, RunEvent

log = logging.getLogger(__name__)

RunUpdate = dict[str, Any]  # column -> value for the runs table


@dataclass
class _Pending:
    run_id: str
    seq: int
    type: str
    data: dict[str, Any]


class EventWriter:
    """Buffers events and run-row updates; a thread writes them in one transaction per batch."""

    def __init__(self, db: Database, *, interval_s: float, batch: int) -> None:
        self._db = db
        self._interval = interval_s
        self._batch = batch
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: deque[_Pending] = deque()
        self._updates: dict[str, RunUpdate] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.batches_written = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="layerlab-event-writer", daemon=True)
        self._thread.start()

    def append(self, run_id: str, data: dict[str, Any], update: RunUpdate | None = None) -> None:
        with self._lock:
            self._pending.append(_Pending(run_id, int(data["seq"]), str(data["type"]), data))
            if update:
                self._updates.setdefault(run_id, {}).update(update)
            if len(self._pending) >= self._batch:
                self._wake.notify()

    def update_run(self, run_id: str, update: RunUpdate) -> None:
        with self._lock:
            self._updates.setdefault(run_id, {}).update(update)

    def pending_for(self, run_id: str) -> list[dict[str, Any]]:
        """Events of this run that are buffered but not yet written."""
        with self._lock:
            return [p.data for p in self._pending if p.run_id == run_id]

    def forget_run(self, run_id: str) -> None:
        # Buffered events of a deleted run are skipped at write time (their run row is gone).
        with self._lock:
            self._updates.pop(run_id, None)

    def flush(self) -> None:
        """Write everything buffered now (from any thread; flushes never overlap)."""
        with self._flush_lock:
            with self._lock:
                items = list(self._pending)
                updates = self._updates
                self._updates = {}
            if not items and not updates:
                return
            try:
                self._write(items, updates)
            except Exception:
                # One bad row (a duplicate seq, say) must not block the rest: write one by one.
                log.exception("writing a batch of %d events failed; retrying one by one", len(items))
                for item in items:
                    try:
                        self._write([item], {})
                    except Exception:
                        log.error("dropped event %s #%d of run %s", item.type, item.seq, item.run_id)
                try:
                    self._write([], updates)
                except Exception:
                    log.exception("updating runs %s failed", sorted(updates))
            with self._lock:
                for _ in range(len(items)):
                    self._pending.popleft()
            self.batches_written += 1

    def _write(self, items: list[_Pending], updates: dict[str, RunUpdate]) -> None:
        with self._db.session() as session:
            run_ids = {p.run_id for p in items} | set(updates)
            existing = set(session.scalars(select(Run.id).where(Run.id.in_(run_ids)))) if run_ids else set()
            session.add_all(
                RunEvent(run_id=p.run_id, seq=p.seq, type=p.type, data=p.data) for p in items if p.run_id in existing
            )
            for run_id, values in updates.items():
                if run_id in existing:
                    run = session.get(Run, run_id)
                    if run is not None:
                        for key, value in values.items():
                            setattr(run, key, value)
            session.commit()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._stopping and len(self._pending) < self._batch:
                    self._wake.wait(self._interval)
                stopping = self._stopping
            self.flush()
            if stopping:
                return

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()


Item = tuple[int, str, bool]  # (seq, json text, the run's terminal event)


class Watcher:
    """One websocket client's bounded queue of (seq, json text, terminal) items."""

    RESYNC: Item = (-1, "", False)

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=maxsize)
        self.overflowed = False

    def offer(self, item: Item) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Too far behind: drop what is queued and tell the client to reload history.
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(self.RESYNC)


@dataclass
class EventHub:
    """Per-run and global watchers. Lives on the event loop: call its methods from the loop."""

    queue_size: int
    runs: dict[str, set[Watcher]] = field(default_factory=dict)
    status_watchers: set[Watcher] = field(default_factory=set)

    def watch_run(self, run_id: str) -> Watcher:
        watcher = Watcher(self.queue_size)
        self.runs.setdefault(run_id, set()).add(watcher)
        return watcher

    def unwatch_run(self, run_id: str, watcher: Watcher) -> None:
        watchers = self.runs.get(run_id)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self.runs[run_id]

    def watch_status(self) -> Watcher:
        watcher = Watcher(self.queue_size)
        self.status_watchers.add(watcher)
        return watcher

    def unwatch_status(self, watcher: Watcher) -> None:
        self.status_watchers.discard(watcher)

    def publish(self, run_id: str, seq: int, text: str, terminal: bool = False) -> None:
        for watcher in list(self.runs.get(run_id, ())):
            watcher.offer((seq, text, terminal))

    def publish_status(self, text: str) -> None:
        for watcher in list(self.status_watchers):
            watcher.offer((0, text, False))

    def watcher_count(self, run_id: str) -> int:
        return len(self.runs.get(run_id, ()))


def call_on_loop(loop: asyncio.AbstractEventLoop | None, fn: Callable[..., None], *args: Any) -> None:
    """Run ``fn(*args)`` on the loop from any thread (a no-op once the loop has closed)."""
    if loop is None or loop.is_closed():
        return
    with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
        loop.call_soon_threadsafe(fn, *args)
