"""Exporting a graph as a file: Python source, TorchScript, ONNX or the graph JSON itself.

Shared by the CLI (``layerlab export``) and the web API (``POST /api/export``).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, Literal

from .codegen import to_python
from .graph import Graph, GraphInvalidError, parse_graph
from .shapes import analyze

ExportFormat = Literal["python", "torchscript", "onnx", "json"]
EXPORT_FORMATS: tuple[str, ...] = ("python", "torchscript", "onnx", "json")


class ExportUnavailableError(RuntimeError):
    """The format needs an optional package that is not installed."""


@dataclass
class Exported:
    filename: str
    media_type: str
    content: bytes


def export_graph(graph: Graph | dict[str, Any], fmt: ExportFormat, *, seed: int = 0) -> Exported:
    """Render ``graph`` in ``fmt``; raises GraphInvalidError for an invalid graph."""
    parsed, errors = parse_graph(graph)
    if parsed is None:
        raise GraphInvalidError(errors)
    stem = _stem(parsed.name)
    if fmt == "json":
        body = json.dumps(parsed.model_dump(mode="json", exclude_none=True), indent=2) + "\n"
        return Exported(f"{stem}.json", "application/json", body.encode())
    if fmt == "python":
        return Exported(f"{stem}.py", "text/x-python", to_python(parsed, seed=seed).encode())
    analysis = analyze(parsed)
    if analysis.plan is None:
        raise GraphInvalidError(analysis.report.errors)

    import torch

    from .compile import build_plan

    model = build_plan(analysis.plan, seed=seed).eval()
    shape = (1, *analysis.plan.input_shape)
    example = (torch.zeros(shape, dtype=torch.long) if analysis.plan.input_dtype == "int64"
               else torch.randn(shape))
    buf = io.BytesIO()
    if fmt == "torchscript":
        with torch.no_grad():
            scripted = torch.jit.trace(model, example)
        torch.jit.save(scripted, buf)
        return Exported(f"{stem}.pt", "application/octet-stream", buf.getvalue())
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as e:
            raise ExportUnavailableError(
                "ONNX export needs the onnx and onnxscript packages: pip install 'layerlab[export]'"
            ) from e
        program = torch.onnx.export(
            model, (example,), dynamo=True, input_names=["x"], output_names=["y"], verbose=False
        )
        program.save(buf)
        return Exported(f"{stem}.onnx", "application/octet-stream", buf.getvalue())
    raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")


def _stem(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")
    return safe or "model"
