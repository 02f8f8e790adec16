"""Exporting a graph as a file: Python source, TorchScript, ONNX, the graph JSON itself, or the
whole training run as a script or a notebook (those take the run config too).

One place for both the CLI (``layerlab export``) and the web API (``POST /api/export``).
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .codegen import to_python
from .graph import Graph, GraphError, GraphInvalidError
from .shapes import analyze
from .shapes.report import BYTES_PER_ELEMENT, Report, format_bytes

if TYPE_CHECKING:
    from .train.config import RunConfig

ExportFormat = Literal["python", "torchscript", "onnx", "json", "script", "ipynb"]
EXPORT_FORMATS: tuple[str, ...] = ("python", "torchscript", "onnx", "json", "script", "ipynb")
TRAINING_FORMATS = ("script", "ipynb")  # the run config matters to these
TEXT_FORMATS = ("python", "json", "script", "ipynb")
# What building and tracing a model for export may take by default (LAYERLAB_MAX_BUILD_BYTES):
# the weights plus one sample's activations, estimated from the shape report before anything is built.
DEFAULT_MAX_BUILD_BYTES = 32 * 2**20
MEDIA_TYPES = {
    "python": ("text/x-python; charset=utf-8", ".py"),
    "torchscript": ("application/octet-stream", ".pt"),
    "onnx": ("application/octet-stream", ".onnx"),
    "json": ("application/json", ".json"),
    "script": ("text/x-python; charset=utf-8", "_train.py"),
    "ipynb": ("application/x-ipynb+json", "_train.ipynb"),
}


class ExportUnavailableError(RuntimeError):
    """The format needs an optional package that is not installed."""


@dataclass
class Exported:
    filename: str
    media_type: str
    content: bytes


def onnx_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxscript"))


def nbformat_available() -> bool:
    return importlib.util.find_spec("nbformat") is not None


def safe_name(name: str) -> str:
    """A file name from the graph's name: no path separators, no leading dots."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip("._")[:64] or "model"


def export_graph(graph: Graph | dict[str, Any], fmt: ExportFormat, *, seed: int = 0,
                 config: RunConfig | dict[str, Any] | None = None, max_build_bytes: int | None = None) -> Exported:
    """Render ``graph`` in ``fmt``; ``config`` is the run config of a script or notebook (default:
    the defaults; its seed then wins over ``seed``). ``max_build_bytes`` bounds what a TorchScript or
    ONNX export may build (None: no bound). Raises GraphInvalidError for an invalid graph (or one the
    exporter cannot handle, or too big to build), ScriptUnsupportedError for a run the script cannot show,
    pydantic's ValidationError for a bad config, and ExportUnavailableError when an optional
    package (onnx, nbformat) is not installed."""
    if fmt not in MEDIA_TYPES:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "onnx" and not onnx_available():
        raise ExportUnavailableError("onnx export needs the onnx and onnxscript packages")
    if fmt == "ipynb" and not nbformat_available():
        raise ExportUnavailableError("ipynb export needs the nbformat package")
    analysis = analyze(graph)
    if analysis.plan is None or analysis.graph is None:
        raise GraphInvalidError(analysis.report.errors)
    parsed = analysis.graph
    media, suffix = MEDIA_TYPES[fmt]
    filename = safe_name(parsed.name) + suffix
    if fmt == "json":
        body = json.dumps(parsed.model_dump(mode="json", exclude_none=True), indent=1) + "\n"
        return Exported(filename, media, body.encode())
    if fmt == "python":
        return Exported(filename, media, to_python(parsed, seed=seed).encode())
    if fmt in TRAINING_FORMATS:
        from .script import script_sections, to_notebook
        from .train.config import RunConfig

        cfg = config if isinstance(config, RunConfig) else RunConfig.model_validate(config or {"seed": seed})
        script = script_sections(parsed, cfg)
        body = script.text() if fmt == "script" else to_notebook(script)
        return Exported(filename, media, body.encode())
    too_big = build_size_error(analysis.report, fmt, max_build_bytes)
    if too_big is not None:
        raise GraphInvalidError([too_big])
    try:
        content = _torch_export(analysis.plan, fmt, seed=seed)
    except Exception as e:  # a tracer or exporter limitation, reported like a graph error
        raise GraphInvalidError([GraphError(
            message=f"{fmt} export failed: {type(e).__name__}: {str(e)[:300]}",
            suggestion="export as python instead",
        )]) from e
    return Exported(filename, media, content)


def build_size_error(report: Report, fmt: str, limit: int | None) -> GraphError | None:
    """Whether building ``fmt`` would pass ``limit`` bytes: the weights (every parameter, fp32) plus
    the activations of the one sample it is traced with, from the report, before anything is built.
    The error names the parameter count, the limit and the biggest layers (the first one as its node)."""
    weights = report.totals.memory.weights_bytes
    trace = report.totals.activations * BYTES_PER_ELEMENT
    if limit is None or weights + trace <= limit:
        return None
    layers = sorted((n for n in report.nodes if n.op != "Block" and n.params), key=lambda n: -n.params)[:3]
    biggest = ", ".join(f"{n.id} ({n.op}" + (f", {n.instances} copies" if n.instances > 1 else "") + f") {n.params:,}"
                        for n in layers)
    return GraphError(
        node=layers[0].id if layers else None,
        message=f"{fmt} export builds the model: {report.totals.params:,} parameters ({format_bytes(weights)}) "
        f"and about {format_bytes(trace)} of activations to trace it, above the limit of {format_bytes(limit)}"
        + (f"; the biggest layers: {biggest}" if biggest else ""),
        suggestion="export as python (nothing is built), make the biggest layers smaller, "
        "or raise LAYERLAB_MAX_BUILD_BYTES",
    )


def _torch_export(plan: Any, fmt: str, *, seed: int) -> bytes:
    import torch

    from .compile import build_plan

    model = build_plan(plan, seed=seed).eval()
    shape = (1, *plan.input_shape)
    example = torch.zeros(shape, dtype=torch.long) if plan.input_dtype == "int64" else torch.randn(shape)
    buf = io.BytesIO()
    if fmt == "torchscript":
        # torch.jit is deprecated in favour of torch.export, but TorchScript is still what most
        # deployment targets load; the warnings say nothing the user can act on.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.trace(model, example), buf)
        return buf.getvalue()
    program = torch.onnx.export(model, (example,), dynamo=True, input_names=["x"], output_names=["y"],
                                verbose=False)
    program.save(buf)
    return buf.getvalue()
