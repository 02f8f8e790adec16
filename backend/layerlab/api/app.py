"""The application factory: ``create_app(settings)`` builds one self-contained app."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from layerlab import __version__
from layerlab.graph import Graph, GraphError, GraphInvalidError
from layerlab.offload import CpuPool

from .db import Database
from .demo import ensure_demo
from .deps import AppState, require_token
from .routes import datasets, events, graphs, meta, projects, runs, web
from .runs import ExecutorFactory, RunManager, default_executor
from .schemas import Invalid, Problem
from .security import SAFE_METHODS, GuardMiddleware
from .settings import Settings
from .streaming import EventHub, EventWriter

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, executor_factory: ExecutorFactory | None = None) -> FastAPI:
    """A LayerLab server. ``settings`` default to the ``LAYERLAB_*`` environment variables."""
    settings = settings or Settings.from_env()
    db = Database(settings.db_url)
    writer = EventWriter(db, interval_s=settings.event_flush_interval_s, batch=settings.event_flush_batch)
    hub = EventHub(queue_size=settings.ws_queue_size)
    if executor_factory is None:
        executor_factory = functools.partial(default_executor, num_threads=settings.train_threads)
    # two pools: the editor's reports never import torch and must not queue behind what does
    cpu = CpuPool(settings.cpu_workers, max_pending=settings.cpu_max_pending)
    torch_pool = CpuPool(settings.torch_workers, max_pending=settings.cpu_max_pending)
    manager = RunManager(db=db, writer=writer, hub=hub, runs_dir=settings.runs_dir, uploads_dir=settings.uploads_dir,
                         max_concurrent=settings.max_concurrent_runs, cpu=torch_pool,
                         executor_factory=executor_factory)
    state = AppState(settings=settings, db=db, writer=writer, hub=hub, runs=manager, cpu=cpu, torch_pool=torch_pool)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db.migrate()  # a new database gets the schema, an older one is upgraded
        orphans = manager.recover()
        if orphans:
            log.warning("recovered %d runs from their logs (the server stopped while they ran)", len(orphans))
        if settings.demo:
            ensure_demo(db)
        manager.bind_loop(asyncio.get_running_loop())
        manager.warm_up()
        writer.start()
        cpu.start()
        torch_pool.start()
        try:
            yield
        finally:
            cpu.shutdown()
            torch_pool.shutdown()
            await asyncio.to_thread(manager.shutdown)
            writer.stop()
            db.dispose()

    app = FastAPI(
        title="LayerLab",
        version=__version__,
        summary="Build PyTorch models as graphs, check their shapes, export and train them.",
        lifespan=lifespan,
    )
    app.state.layerlab = state

    api = [Depends(require_token)]
    for router in (meta.router, graphs.router, projects.router, datasets.router, runs.router):
        app.include_router(router, prefix="/api", dependencies=api)
    app.include_router(events.router, prefix="/api")
    app.include_router(web.router)

    _add_error_handlers(app)
    app.add_middleware(GuardMiddleware, settings=settings)
    if settings.allowed_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.allowed_origins, allow_credentials=False,
                           allow_methods=["*"], allow_headers=["*"])
    if "*" not in settings.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GraphInvalidError)
    async def graph_invalid(_request: Request, exc: GraphInvalidError) -> JSONResponse:
        return JSONResponse({"detail": [e.model_dump(mode="json") for e in exc.errors]}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": [e.model_dump(mode="json") for e in request_errors(exc)]}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)


def request_errors(exc: RequestValidationError) -> list[GraphError]:
    """FastAPI's validation errors in the same shape as graph errors: field is the dotted location."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        field = ".".join(loc) or None
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        received = err.get("input")
        if err.get("type") != "missing" and received is not None and not isinstance(received, (dict, list)):
            shown = repr(received)
            message += f"; received {shown if len(shown) <= 80 else shown[:77] + '...'}"
        out.append(GraphError(field=field, message=f"{field}: {message}" if field else message))
    return out


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated spec plus the graph's own schema, so clients get typed graphs."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    graph_schema = Graph.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in graph_schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas["LayerLabGraph"] = graph_schema
    _document_shared_responses(spec)
    app.openapi_schema = spec
    return spec


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _document_shared_responses(spec: dict[str, Any]) -> None:
    """The answers the middleware, the token check and the error handlers give any operation, so the
    document lists every status a client can see (tests/test_schemathesis.py holds it to that)."""
    schemas = spec["components"]["schemas"]
    schemas.setdefault("Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
    for name, definition in Invalid.model_json_schema(ref_template="#/components/schemas/{model}").pop(
            "$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault("Invalid", Invalid.model_json_schema(ref_template="#/components/schemas/{model}"))
    invalid = {"description": "What is wrong, pointed at a graph node or a request field.",
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Invalid"}}}}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            if "422" in responses:  # FastAPI's own shape is replaced by request_errors' everywhere
                responses["422"] = invalid
            responses.setdefault("400", _problem("A path or query string with a NUL or control character, or too long."))
            if path.startswith("/api/"):
                responses.setdefault("401", _problem("LAYERLAB_TOKEN is set and the request does not carry it."))
            if method.upper() not in SAFE_METHODS:
                responses.setdefault("403", _problem("A browser request from an origin that is not allowed."))
            if "requestBody" in op:
                responses.setdefault("413", _problem("The request body is over the size limit."))
            if "{" in path:
                responses.setdefault("404", _problem("Nothing has that id."))
