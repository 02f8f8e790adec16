"""Graph analysis for the editor (called on every edit) and model export."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import tempfile
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from layerlab import Report, infer, to_python
from layerlab.graph import GraphError, GraphInvalidError
from layerlab.shapes import OptimizerName, analyze

from ..schemas import Invalid, Problem

router = APIRouter(tags=["graphs"])

GRAPH_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LayerLabGraph"}}},
}
ExportFormat = Literal["python", "torchscript", "onnx", "json"]
MEDIA = {
    "python": ("text/x-python; charset=utf-8", ".py"),
    "torchscript": ("application/octet-stream", ".pt"),
    "onnx": ("application/octet-stream", ".onnx"),
    "json": ("application/json", ".json"),
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
    content, name = await run_in_threadpool(_export, data, format)
    media, suffix = MEDIA[format]
    return Response(content, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}{suffix}"'})


def onnx_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxscript"))


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip("._")[:64] or "model"


def _export(data: Any, format: str) -> tuple[bytes, str]:  # noqa: A002
    try:
        analysis = analyze(data)
    except RecursionError:
        raise GraphInvalidError([GraphError(message="the graph is nested too deeply")]) from None
    if not analysis.report.valid or analysis.graph is None:
        raise GraphInvalidError(analysis.report.errors)
    graph = analysis.graph
    name = _safe_name(graph.name)
    if format == "json":
        return json.dumps(graph.model_dump(mode="json", exclude_none=True), indent=1).encode(), name
    if format == "python":
        return to_python(graph).encode(), name
    try:
        return _torch_export(graph, analysis.report, format), name
    except GraphInvalidError:
        raise
    except Exception as e:  # a tracer or exporter limitation, reported like a graph error
        raise GraphInvalidError([GraphError(
            message=f"{format} export failed: {type(e).__name__}: {str(e)[:300]}",
            suggestion="export as python instead",
        )]) from e


def _torch_export(graph: Any, report: Report, format: str) -> bytes:  # noqa: A002
    import torch

    from layerlab import build

    model = build(graph).eval()
    shape = [1, *(report.input_shape or [])]
    dtype = torch.long if report.input_dtype == "int64" else torch.float32
    example = torch.zeros(shape, dtype=dtype)
    if format == "torchscript":
        # torch.jit is deprecated in favour of torch.export, but TorchScript is still what most
        # deployment targets load; the warnings say nothing the user can act on.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(model, example)
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer)
        return buffer.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        program = torch.onnx.export(model, (example,), dynamo=True)
        program.save(str(path))
        return path.read_bytes()
