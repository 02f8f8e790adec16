"""LayerLab's web API: FastAPI routers, SQLite/SQLAlchemy persistence and live event streaming.

``create_app(settings)`` builds an app that owns all its state; ``serve`` runs it with uvicorn.
See docs/api.md.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

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


def serve(host: str = "127.0.0.1", port: int = 8000, data_dir: str | Path | None = None, *,
          insecure: bool = False, log_level: str = "info") -> None:
    """Run the server with uvicorn (blocking). Binds to loopback unless told otherwise."""
    import uvicorn

    settings = serve_settings(host, data_dir, insecure=insecure)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, ws_max_size=1 << 20)
