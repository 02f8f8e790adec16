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


def repeated_block_mlp() -> dict[str, Any]:
    """(2,) → Block ``blk`` (Linear ``fc1`` → ReLU ``act``) repeated twice → Linear ``head`` (4)."""
    return graph(
        [node("x", "Input", shape=[2]), node("blk", "Block", repeat=2),
         node("fc1", "Linear", parent="blk", out_features=8), node("act", "ReLU", parent="blk"),
         node("head", "Linear", out_features=4), node("y", "Output")],
        [("x", "blk"), ("blk", "fc1"), ("fc1", "act"), ("act", "blk"), ("blk", "head"), ("head", "y")],
    )


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


# Params LayerLab infers from the incoming shape, filled in the way a person would write them.
_INFERRED = {
    "Conv1d": "in_channels", "Conv2d": "in_channels", "ConvTranspose2d": "in_channels",
    "Linear": "in_features", "BatchNorm1d": "num_features", "BatchNorm2d": "num_features",
    "InstanceNorm2d": "num_features", "GroupNorm": "num_channels",
}


def torch_layer(op: str, params: dict[str, Any], in_shape: list[int] | tuple[int, ...]) -> Any:
    """The ``torch.nn`` module a person would write for ``op`` with these LayerLab params, built
    without LayerLab's builder: the catalog only supplies its defaults (imports torch when called)."""
    from torch import nn

    from layerlab.ops import get_op

    defaults = get_op(op).params_model().model_dump() if op != "Input" else {}
    kw = {k: v for k, v in (defaults | params).items() if v is not None}
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}
    if op in _INFERRED:
        kw.setdefault(_INFERRED[op], in_shape[-1] if op == "Linear" else in_shape[0])
    if op == "LayerNorm":
        kw.setdefault("normalized_shape", in_shape[-1])
    if op == "Upsample" and "size" in params and "scale_factor" not in params:
        kw.pop("scale_factor")
    if op.startswith(("MaxPool", "AvgPool")) and isinstance(kw.get("padding"), str):
        # torch's pools take no 'same'/'valid': write the numbers LayerLab documents
        n = 1 if op.endswith("1d") else 2
        k = kw["kernel_size"] if isinstance(kw["kernel_size"], tuple) else (kw["kernel_size"],) * n
        d = kw.get("dilation", 1)
        d = d if isinstance(d, tuple) else (d,) * n
        s = kw.get("stride") or k
        s = s if isinstance(s, tuple) else (s,) * n
        if kw["padding"] == "same" and (any(si != 1 for si in s) or any(di * (ki - 1) % 2 for ki, di in zip(k, d))):
            # LayerLab's documented rule, as torch's own for a conv: 'same' needs stride 1, and a pool
            # can only pad symmetrically
            raise ValueError("padding='same' on a pool needs stride 1 and an odd effective kernel")
        kw["padding"] = 0 if kw["padding"] == "valid" else tuple(di * (ki - 1) // 2 for ki, di in zip(k, d))
    return getattr(nn, op)(**kw)


def started_event(events: list[Any]) -> Any:
    """A run's run_started event (after the run_starting events that say what it waits for)."""
    return next(e for e in events if e.type == "run_started")


def gc_state() -> dict[str, int]:
    """The cyclic GC in this process (a pool worker's, when a pool runs it): the objects a full
    collection would trace, and those in the permanent generation, which it never traces."""
    import gc

    return {"traced": len(gc.get_objects()), "frozen": gc.get_freeze_count()}
