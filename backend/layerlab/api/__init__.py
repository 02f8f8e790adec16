"""LayerLab's web API: FastAPI routers, SQLite/SQLAlchemy persistence and live event streaming.

``create_app(settings)`` builds an app that owns all its state; ``serve`` runs it with uvicorn.
See docs/api.md.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from .app import create_app
from .settings import Settings

__all__ = ["InsecureBindError", "Settings", "create_app", "serve", "serve_settings"]

log = logging.getLogger(__name__)


class InsecureBindError(RuntimeError):
    """Refused to serve on a non-loopback address without a token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve_settings(host: str, data_dir: str | Path | None = None, *, insecure: bool = False) -> Settings:
    """The settings ``serve`` runs with. Off loopback, the address is added to the allowed hosts
    (``0.0.0.0`` and ``::`` allow any) and LAYERLAB_TOKEN is required unless ``insecure``."""
    settings = Settings.from_env(data_dir=Path(data_dir) if data_dir is not None else None)
    if is_loopback(host):
        return settings
    if not settings.token:
        if not insecure:
            raise InsecureBindError(
                f"refusing to serve on {host} without LAYERLAB_TOKEN: anyone who can reach it could read "
                "every project and run code by training. Set LAYERLAB_TOKEN, or pass --insecure to accept that.")
        log.warning("serving on %s without LAYERLAB_TOKEN (--insecure): anyone who can reach it can train and read",
                    host)
    if host in ("0.0.0.0", "::"):
        return settings.model_copy(update={"allowed_hosts": ["*"]})
    if settings.allowed_hosts and "*" not in settings.allowed_hosts:
        return settings.model_copy(update={"allowed_hosts": [*settings.allowed_hosts, host]})
    return settings


# SIGTERM (docker stop, systemd, Kubernetes) must end the process within 5 s whatever is in flight:
# requests get GRACE_S to finish, then the app shuts down (runs, workers, the event writer), and
# a process still alive DEADLINE_S after the signal exits anyway.
GRACE_S = 1
DEADLINE_S = 4.5


def serve(host: str = "127.0.0.1", port: int = 8000, data_dir: str | Path | None = None, *,
          insecure: bool = False, log_level: str = "info") -> None:
    """Run the server with uvicorn (blocking). Binds to loopback unless told otherwise."""
    import uvicorn

    settings = serve_settings(host, data_dir, insecure=insecure)
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level=log_level, ws_max_size=1 << 20,
                            timeout_graceful_shutdown=GRACE_S)
    _server_class()(config).run()


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server with a deadline on SIGTERM."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if sig == signal.SIGTERM and not self.should_exit:
                threading.Thread(target=_exit_after, args=(DEADLINE_S,), name="sigterm-deadline", daemon=True).start()
            super().handle_exit(sig, frame)

    return Server


def _exit_after(seconds: float) -> None:
    time.sleep(seconds)
    log.error("still shutting down %.1f s after SIGTERM: exiting now", seconds)
    logging.shutdown()
    os._exit(1)
