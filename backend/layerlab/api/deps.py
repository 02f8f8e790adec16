"""The app's state object and the dependencies routers ask for."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, WebSocketException, status
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from layerlab.offload import CpuPool

from .db import Database
from .runs import RunManager
from .security import origin_ok, token_ok
from .settings import Settings
from .streaming import EventHub, EventWriter


@dataclass
class AppState:
    """Everything one app instance owns; two apps never share any of it."""

    settings: Settings
    db: Database
    writer: EventWriter
    hub: EventHub
    runs: RunManager
    cpu: CpuPool  # the editor's reports (no torch in these workers)
    torch_pool: CpuPool  # run checks, training-script text, exports: the jobs that load torch
    builtin_datasets: list[Any] | None = None
    datasets_lock: threading.Lock = field(default_factory=threading.Lock)


def get_state(conn: HTTPConnection) -> AppState:
    return conn.app.state.layerlab


def get_session(state: Annotated[AppState, Depends(get_state)]) -> Iterator[Session]:
    with state.db.session() as session:
        yield session


def require_token(conn: HTTPConnection, state: Annotated[AppState, Depends(get_state)]) -> None:
    """HTTP: ``Authorization: Bearer <LAYERLAB_TOKEN>`` when a token is set. A checkpoint download
    may pass ``?token=`` instead, since a browser's download link cannot set headers."""
    download = conn.scope.get("method") == "GET" and conn.url.path.endswith("/checkpoint")
    if not token_ok(conn, state.settings, allow_query=download):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong token",
                            headers={"WWW-Authenticate": "Bearer"})


def guard_websocket(conn: HTTPConnection, state: Annotated[AppState, Depends(get_state)]) -> None:
    """Websockets: the token (header or ``?token=``) and the Origin, checked before accepting."""
    if not origin_ok(conn, state.settings):
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "origin not allowed")
    if not token_ok(conn, state.settings, allow_query=True):
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "missing or wrong token")


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_session)]
