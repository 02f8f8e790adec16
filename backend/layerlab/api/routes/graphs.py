"""Graph analysis for the editor (called on every edit), model export and the training script."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from layerlab import Report
from layerlab.export import (
    TRAINING_FORMATS,
    ExportFormat,
    ExportUnavailableError,
    onnx_available,
)
from layerlab.graph import GraphError, GraphInvalidError, load_json
from layerlab.offload import export_file, report_json, script_view_text
from layerlab.script import ScriptUnsupportedError
from layerlab.shapes import OptimizerName
from layerlab.train.config import RunConfig
from layerlab.train.data import DatasetError

from ..db import Run
from ..deps import SessionDep, StateDep
from ..schemas import BUSY, Invalid, Problem

router = APIRouter(tags=["graphs"])
T = TypeVar("T")

GRAPH_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LayerLabGraph"}}},
}


async def read_json(request: Request) -> Any:
    """The raw JSON body; 422 in the graph-error shape when it is not JSON."""
    return load_json(await request.body())


@router.post("/graphs/report", openapi_extra={"requestBody": GRAPH_BODY}, response_model=Report,
             responses={422: {"model": Invalid}, **BUSY})
async def report(
    request: Request,
    state: StateDep,
    batch_size: Annotated[int, Query(ge=1, le=1_000_000)] = 32,
    optimizer: OptimizerName = "adam",
) -> Response:
    """Shapes, parameters, MACs, memory and errors per node; 200 even when the graph has errors."""
    # parsed, analysed and serialized in a worker process: the event loop only passes bytes on
    body = await state.cpu.run(report_json, await request.body(), batch_size, optimizer)
    return Response(body, media_type="application/json")


class ScriptView(BaseModel):
    code: str
    nodes: dict[str, list[int]] = Field(description="Node id -> the 1-based lines that define or use it.")
    frozen_lines: list[int] = Field(description="The requires_grad_(False) lines of frozen nodes.")


EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/x-python": {}, "application/octet-stream": {}, "application/json": {},
                      "application/x-ipynb+json": {}},
          "description": "The file, as an attachment."},
    422: {"model": Invalid},
    501: {"model": Problem, "description": "ONNX export without onnx and onnxscript, ipynb without nbformat."},
    **BUSY,
}


@router.post("/export", openapi_extra={"requestBody": GRAPH_BODY}, response_class=Response,
             responses=EXPORT_RESPONSES)
async def export(
    request: Request, session: SessionDep, state: StateDep, format: ExportFormat = "python",  # noqa: A002
) -> Response:
    """The graph as a Python file, TorchScript, ONNX or normalized JSON (a download); ``script`` and
    ``ipynb`` take ``{"graph": ..., "config": ...}`` (or a bare graph: the default config) and give
    the whole training run as a script or a notebook. A TorchScript or ONNX export builds the
    weights: one that would take more than ``LAYERLAB_MAX_BUILD_BYTES`` is a 422, before anything is built."""
    if format == "onnx" and not onnx_available():
        raise HTTPException(501, "onnx export needs the onnx and onnxscript packages")
    data = await read_json(request)
    config = None
    if format in TRAINING_FORMATS:
        data, config = _graph_and_config(data, session, state)
    return await _export(state, data, format, config)


@router.get("/runs/{run_id}/export", response_class=Response, responses=EXPORT_RESPONSES)
async def export_run(run_id: str, session: SessionDep, state: StateDep,
                     format: Literal["script", "ipynb"] = "script") -> Response:  # noqa: A002
    """A run's training script or notebook, from the graph version and the config it trained with."""
    run = session.get(Run, run_id)
    if run is None:
        raise HTTPException(404, "run not found")
    if run.parent_run_id is not None:
        raise HTTPException(409, "this run fine-tunes another run's weights; the script starts from fresh "
                                 "weights, so export the run it started from")
    if run.init_weights is not None:
        raise HTTPException(409, "this run starts from uploaded weights; the script starts from fresh "
                                 "weights, so it would not reproduce the run")
    return await _export(state, run.graph, format, _validated(run.config))


@router.post("/graphs/script", openapi_extra={"requestBody": GRAPH_BODY},
             responses={422: {"model": Invalid}, **BUSY})
async def script_view(request: Request, session: SessionDep, state: StateDep) -> ScriptView:
    """The training script for the code view: its text, the lines of each node, the freezing lines."""
    graph, config = _graph_and_config(await read_json(request), session, state)
    text, nodes = await _in_pool(state, script_view_text, graph, config)
    frozen = [i + 1 for i, line in enumerate(text.split("\n")) if line.strip().endswith(".requires_grad_(False)")]
    return ScriptView(code=text, nodes=nodes, frozen_lines=frozen)


def _validated(config: Any) -> RunConfig:
    try:
        return RunConfig.model_validate(config if config is not None else {})
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("config", *err["loc"])} for err in e.errors()]) from e


def _graph_and_config(data: Any, session: SessionDep, state: StateDep) -> tuple[Any, RunConfig]:
    """``{"graph", "config"}`` or a bare graph; an upload id in the config becomes its stored file."""
    if isinstance(data, dict) and "graph" in data and "nodes" not in data:
        graph, config = data["graph"], _validated(data.get("config"))
    else:
        graph, config = data, RunConfig()
    if config.data.upload is not None:
        config = RunConfig.model_validate(state.runs.resolve_config(session, config))
    return graph, config


async def _in_pool(state: StateDep, fn: Callable[..., T], *args: Any) -> T:
    """A job in the app's torch workers (not the report workers); a run config the script cannot show, or a dataset that
    cannot load, is a 422 on the config, a format without its package a 501."""
    try:
        return await state.torch_pool.run(fn, *args)
    except ExportUnavailableError as e:
        raise HTTPException(501, str(e)) from e
    except (ScriptUnsupportedError, DatasetError) as e:
        raise GraphInvalidError([GraphError(field="config", message=str(e))]) from e


async def _export(state: StateDep, data: Any, fmt: str, config: RunConfig | None) -> Response:
    out = await _in_pool(state, export_file, data, fmt, config, state.settings.max_build_bytes)
    return Response(out.content, media_type=out.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{out.filename}"'})
