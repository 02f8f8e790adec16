"""Token, Origin, request-target and body-size checks. Defaults suit one person on their own machine."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_plus

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from .settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TARGET = 4096  # bytes of path or of query string
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def token_ok(conn: HTTPConnection, settings: Settings, *, allow_query: bool) -> bool:
    """The token from ``Authorization: Bearer`` (or ``?token=`` for websockets) matches."""
    if not settings.token:
        return True
    given = None
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if given is None and allow_query:
        given = conn.query_params.get("token")
    return given is not None and secrets.compare_digest(given.encode(), settings.token.encode())


def origin_ok(conn: HTTPConnection, settings: Settings) -> bool:
    """No Origin (not a browser), one on the allow-list, or the server's own origin, and the last
    only when the Host header is one the server was configured with: a DNS-rebinding page sends
    its own name as both Host and Origin, so with the Host check off the request's Host proves nothing."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    if origin in settings.allowed_origins or "*" in settings.allowed_origins:
        return True
    host = conn.headers.get("host", "")
    return host_configured(host, settings) and origin in (f"http://{host}", f"https://{host}")


def host_configured(host: str, settings: Settings) -> bool:
    """``host`` (port aside) is named by LAYERLAB_ALLOWED_HOSTS; a ``*`` names nothing."""
    name = _hostname(host).lower()
    for allowed in settings.allowed_hosts:
        if allowed == "*":
            continue
        if name == allowed.lower() or (allowed.startswith("*.") and name.endswith(allowed[1:].lower())):
            return True
    return False


def _hostname(host: str) -> str:
    if host.startswith("["):  # [::1]:8000
        return host[: host.find("]") + 1] or host
    return host.rsplit(":", 1)[0]


def target_problem(scope: Scope) -> str | None:
    """Why a request's path or query cannot name anything (a NUL, control characters, a target
    longer than any route), so it is a 400 before a route, the file system or the database sees it."""
    path = scope.get("path", "")
    if len(scope.get("raw_path") or path.encode()) > MAX_TARGET or _CONTROL.search(path):
        return "bad request path"
    query = scope.get("query_string", b"")
    if len(query) > MAX_TARGET or _CONTROL.search(unquote_plus(query.decode("latin-1"))):
        return "bad query string"
    return None


class _TooLarge(HTTPException):
    """Raised from ``receive``: an HTTPException so that FastAPI's body parsing passes it on."""

    def __init__(self) -> None:
        super().__init__(413, "request body too large")


class GuardMiddleware:
    """Refuses bodies over the limit (413) and cross-site writes from foreign origins (403)."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def limit_for(self, scope: Scope) -> int:
        if scope["method"] == "POST" and scope["path"].rstrip("/") == "/api/datasets":
            return self.settings.max_upload_bytes
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = target_problem(scope)
        if scope["type"] == "websocket":
            if problem is not None:
                await send({"type": "websocket.close", "code": 1008, "reason": problem})
                return
            await self.app(scope, receive, send)
            return
        if problem is not None:
            await _reply(send, 400, problem)
            return
        conn = HTTPConnection(scope)
        if scope["method"] not in SAFE_METHODS and not origin_ok(conn, self.settings):
            await _reply(send, 403, "origin not allowed")
            return
        limit = self.limit_for(scope)
        length = conn.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _reply(send, 400, "bad content-length")
                return
            if int(length) > limit:
                await _reply(send, 413, "request body too large")
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _reply(send, 413, "request body too large")


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
