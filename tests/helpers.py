"""Graph-building helpers shared by the core tests: small graphs in a line or two."""

from __future__ import annotations

from typing import Any

INPUT_ID = "inp"
OUTPUT_ID = "out"


def node(node_id: str, op: str, parent: str | None = None, **params: Any) -> dict[str, Any]:
    """One node dict; extra keyword arguments are the op's params."""
    n: dict[str, Any] = {"id": node_id, "op": op, "params": params}
    if parent is not None:
        n["parent"] = parent
    return n


def edge(source: str, target: str) -> dict[str, str]:
    return {"source": source, "target": target}


def graph(nodes: list[dict[str, Any]], edges: list[tuple[str, str]] | list[dict[str, str]]) -> dict[str, Any]:
    return {
        "format": "layerlab.graph/1",
        "nodes": nodes,
        "edges": [e if isinstance(e, dict) else edge(*e) for e in edges],
    }


def chain(shape: list[int] | tuple[int, ...], *layers: dict[str, Any] | tuple[str, dict[str, Any]],
          dtype: str = "float32") -> dict[str, Any]:
    """Input(shape) → layers in order → Output. A layer is a node dict or ``(op, params)``;
    ``(op, params)`` layers get ids ``l0, l1, ...``."""
    nodes = [node(INPUT_ID, "Input", shape=list(shape), dtype=dtype)]
    for i, layer in enumerate(layers):
        if isinstance(layer, tuple):
            op, params = layer
            layer = node(f"l{i}", op, **params)
        nodes.append(layer)
    nodes.append(node(OUTPUT_ID, "Output"))
    ids = [n["id"] for n in nodes]
    return graph(nodes, list(zip(ids, ids[1:])))


def single(op: str, params: dict[str, Any], shape: list[int] | tuple[int, ...], *,
           dtype: str = "float32") -> dict[str, Any]:
    """Input(shape) → one ``op`` node with id ``layer`` → Output."""
    return chain(shape, node("layer", op, **params), dtype=dtype)


def errors_for(report: Any, node_id: str | None) -> list[Any]:
    return [e for e in report.errors if e.node == node_id]


def sample_input(shape: list[int] | tuple[int, ...], *, batch: int = 2, dtype: str = "float32",
                 high: int = 2) -> Any:
    """A random batch for a per-sample ``shape`` (imports torch only when called)."""
    import torch

    g = torch.Generator().manual_seed(1234)
    if dtype == "int64":
        return torch.randint(0, high, (batch, *shape), generator=g)
    return torch.randn((batch, *shape), generator=g)


def n_params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())
