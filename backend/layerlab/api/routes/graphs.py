"""Graph analysis for the editor (called on every edit) and model export."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from layerlab import Report, infer
from layerlab.export import ExportFormat, ExportUnavailableError, export_graph, onnx_available
from layerlab.graph import GraphError, GraphInvalidError
from layerlab.shapes import OptimizerName

from ..schemas import Invalid, Problem

router = APIRouter(tags=["graphs"])

GRAPH_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LayerLabGraph"}}},
}


async def read_json(request: Request) -> Any:
    """The raw JSON body; 422 in the graph-error shape when it is not JSON."""
    body = await request.body()
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise GraphInvalidError([GraphError(message="the request body is not valid JSON",
                                            suggestion="send the graph as a JSON object")]) from e


@router.post("/graphs/report", openapi_extra={"requestBody": GRAPH_BODY}, responses={422: {"model": Invalid}})
async def report(
    request: Request,
    batch_size: Annotated[int, Query(ge=1, le=1_000_000)] = 32,
    optimizer: OptimizerName = "adam",
) -> Report:
    """Shapes, parameters, MACs, memory and errors per node; 200 even when the graph has errors."""
    data = await read_json(request)
    return await run_in_threadpool(_infer, data, batch_size, optimizer)


def _infer(data: Any, batch_size: int, optimizer: str) -> Report:
    try:
        return infer(data, batch_size=batch_size, optimizer=optimizer)
    except RecursionError:
        return Report(valid=False, errors=[GraphError(message="the graph is nested too deeply")])


@router.post(
    "/export",
    openapi_extra={"requestBody": GRAPH_BODY},
    response_class=Response,
    responses={
        200: {"content": {"text/x-python": {}, "application/octet-stream": {}, "application/json": {}},
              "description": "The file, as an attachment."},
        422: {"model": Invalid},
        501: {"model": Problem, "description": "ONNX export without the onnx and onnxscript packages."},
    },
)
async def export(request: Request, format: ExportFormat = "python") -> Response:  # noqa: A002 - the query name
    """The graph as a Python file, TorchScript, ONNX or normalized JSON (a download)."""
    if format == "onnx" and not onnx_available():
        raise HTTPException(501, "onnx export needs the onnx and onnxscript packages")
    data = await read_json(request)
    try:
        out = await run_in_threadpool(export_graph, data, format)
    except ExportUnavailableError as e:
        raise HTTPException(501, str(e)) from e
    return Response(out.content, media_type=out.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{out.filename}"'})
