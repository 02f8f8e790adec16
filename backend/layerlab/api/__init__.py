"""LayerLab's web API: FastAPI routers, SQLite/SQLAlchemy persistence and live event streaming.

``create_app(settings)`` builds an app that owns all its state; ``serve`` runs it with uvicorn.
See docs/api.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app", "serve"]

log = logging.getLogger(__name__)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def serve(host: str = "127.0.0.1", port: int = 8000, data_dir: str | Path | None = None, *,
          log_level: str = "info") -> None:
    """Run the server with uvicorn (blocking). Binds to loopback unless told otherwise."""
    import uvicorn

    settings = Settings.from_env(data_dir=Path(data_dir) if data_dir is not None else None)
    if host not in LOOPBACK:
        if settings.allowed_hosts and "*" not in settings.allowed_hosts:
            settings = settings.model_copy(update={"allowed_hosts": [*settings.allowed_hosts, host]})
        if host in ("0.0.0.0", "::"):
            settings = settings.model_copy(update={"allowed_hosts": ["*"]})
        if not settings.token:
            log.warning("serving on %s without LAYERLAB_TOKEN: anyone who can reach it can train and read", host)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, ws_max_size=1 << 20)
