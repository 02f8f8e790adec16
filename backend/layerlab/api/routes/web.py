"""The built editor at ``/`` (with an SPA fallback), or a page saying how to build it."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.routing import compile_path

from ..deps import StateDep

router = APIRouter(include_in_schema=False)
MAX_PATH = 1024

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LayerLab</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto">
<h1>LayerLab</h1>
<p>The editor is not built. Run <code>make run</code> to build it and start the server.</p>
<p>The API is up: see <a href="/docs">/docs</a>.</p>
</body></html>
"""


@router.get("/{path:path}", response_model=None)
def spa(path: str, state: StateDep, request: Request) -> Response:
    """A file of the built editor, else its index.html (client-side routes)."""
    if path == "api" or path.startswith("api/"):
        allowed = _methods_for(request)
        if allowed:  # this catch-all answers every GET: an API path that only takes other methods is a 405
            raise HTTPException(405, "method not allowed", headers={"Allow": ", ".join(sorted(allowed))})
        raise HTTPException(404, "not found")
    root = state.settings.static_dir.resolve()
    index = root / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT)
    if path:
        candidate = _file_in(root, path)
        if candidate is not None:
            return FileResponse(candidate, headers=_cache(candidate, root))
    return FileResponse(index, headers={"Cache-Control": "no-cache"})


def _methods_for(request: Request) -> set[str]:
    """The methods the API document lists for this request's path."""
    methods: set[str] = set()
    for template, item in request.app.openapi()["paths"].items():
        if compile_path(template)[0].match(request.url.path):
            methods |= {m.upper() for m in item}
    return methods


def _file_in(root: Path, path: str) -> Path | None:
    """The file ``path`` names inside ``root``, or None: never outside it, and a name the file
    system refuses (too long, a NUL) is simply not there."""
    if len(path) > MAX_PATH or any(len(part) > 255 for part in path.split("/")):
        return None
    try:
        candidate = (root / path).resolve()
        return candidate if candidate.is_relative_to(root) and candidate.is_file() else None
    except (OSError, ValueError):
        return None


def _cache(path: Path, root: Path) -> dict[str, str]:
    # Vite puts content-hashed files under assets/: they never change.
    if path.parent == root / "assets":
        return {"Cache-Control": "public, max-age=31536000, immutable"}
    return {"Cache-Control": "no-cache"}
