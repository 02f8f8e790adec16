"""Websockets: one run's events (replay after ``after``, then live) and run status for list views.

Messages are JSON text frames. A run's stream carries its events exactly as stored (each with
``type``, ``run_id`` and ``seq``), then closes after the terminal event. A watcher that falls
``ws_queue_size`` messages behind gets ``{"type": "resync", ...}`` and the socket closes; the
client reconnects with ``after=<last seq it has>`` and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, WebSocket, WebSocketDisconnect, status
from starlette.concurrency import run_in_threadpool

from ..db import Run
from ..deps import StateDep, guard_websocket
from ..runs import dumps
from ..streaming import Watcher

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"], dependencies=[Depends(guard_websocket)])

REPLAY_PAGE = 2000
CLOSE_RESYNC = 4000  # the client fell behind: reload history (reconnect with after=)
CLOSE_NOT_FOUND = 4404


async def _until_disconnect(ws: WebSocket) -> None:
    """Read (and ignore) client messages until the client goes away."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return


async def _race(ws: WebSocket, sender: Any) -> None:
    """Run ``sender`` until it ends or the client disconnects, whichever is first."""
    send_task = asyncio.ensure_future(sender)
    read_task = asyncio.ensure_future(_until_disconnect(ws))
    try:
        await asyncio.wait({send_task, read_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if send_task.done() and not send_task.cancelled():
            failure = send_task.exception()
            if failure is not None and not isinstance(failure, (WebSocketDisconnect, RuntimeError, OSError)):
                log.error("websocket sender failed", exc_info=failure)
        for task in (send_task, read_task):
            task.cancel()
        for task in (send_task, read_task):
            # The server may be cancelling this handler too (shutdown): the socket is gone either way.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@router.websocket("/runs/{run_id}/events")
async def run_events(
    ws: WebSocket,
    run_id: str,
    state: StateDep,
    after: Annotated[int, Query(ge=-1, le=2**62)] = -1,
) -> None:
    """Every event of the run after ``after`` (stored first, then live), closing after the last."""
    run = await run_in_threadpool(_load_run, state, run_id)
    await ws.accept()  # then close, so that a browser sees the code (a refused handshake shows none)
    if run is None:
        await ws.close(CLOSE_NOT_FOUND, "run not found")
        return
    watcher = state.hub.watch_run(run_id)  # subscribe before reading history: nothing falls between
    try:
        await _race(ws, _stream_run(ws, state, run_id, after, watcher))
    finally:
        state.hub.unwatch_run(run_id, watcher)


def _is_active(state: StateDep, run_id: str) -> bool:
    """Whether the run is queued, running or paused now (a stopped run may have been continued)."""
    run = _load_run(state, run_id)
    return run is not None and state.runs.is_active(run)


def _load_run(state: StateDep, run_id: str) -> Run | None:
    with state.db.session() as session:
        return session.get(Run, run_id)


async def _stream_run(ws: WebSocket, state: StateDep, run_id: str, after: int, watcher: Watcher) -> None:
    # Replay what is stored (and buffered), page by page. A terminal event in the middle of the
    # history is a stop that was later continued: the stream goes on past it.
    last = await _replay(ws, state, run_id, after)
    if not await run_in_threadpool(_is_active, state, run_id):
        # Over: whatever came in while the replay ran, then close (also when ``after`` is at or
        # past the last event: nothing more will come).
        await _replay(ws, state, run_id, last)
        await ws.close(status.WS_1000_NORMAL_CLOSURE)
        return
    # Then live events; duplicates of the replay are skipped by seq.
    while True:
        item = await watcher.queue.get()
        if item == Watcher.RESYNC:
            await ws.send_text(dumps({"type": "resync", "run_id": run_id, "after": last}))
            await ws.close(CLOSE_RESYNC, "too far behind: reconnect with after")
            return
        seq, text, terminal = item
        if seq <= last:
            continue
        await ws.send_text(text)
        last = seq
        if terminal:
            await ws.close(status.WS_1000_NORMAL_CLOSURE)
            return


async def _replay(ws: WebSocket, state: StateDep, run_id: str, after: int) -> int:
    """Send the stored events after ``after``; returns the last seq sent (or ``after``)."""
    last = after
    while True:
        page = await run_in_threadpool(state.runs.history, run_id, after=last, limit=REPLAY_PAGE)
        for event in page:
            await ws.send_text(dumps(event))
            last = event["seq"]
        if len(page) < REPLAY_PAGE:
            return last


@router.websocket("/events")
async def status_events(ws: WebSocket, state: StateDep) -> None:
    """Run status changes (run_status, run_deleted) for list views."""
    await ws.accept()
    watcher = state.hub.watch_status()
    try:
        await _race(ws, _stream_status(ws, watcher))
    finally:
        state.hub.unwatch_status(watcher)


async def _stream_status(ws: WebSocket, watcher: Watcher) -> None:
    while True:
        item = await watcher.queue.get()
        if item == Watcher.RESYNC:
            await ws.send_text(dumps({"type": "resync"}))
            await ws.close(CLOSE_RESYNC, "too far behind: reload the run list")
            return
        await ws.send_text(item[1])
