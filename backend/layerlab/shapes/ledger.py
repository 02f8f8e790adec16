"""What the walk writes down as it goes: every error it finds, and for each node its shapes and
costs summed over its instances; at the end, the :class:`Report` with the model's totals and a
memory estimate for training."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal

import pydantic_core

from ..graph import Graph, GraphError
from ..ops import TensorInfo
from ..ops.base import fmt_shape, numel
from .report import BYTES_PER_ELEMENT, OPTIMIZER_STATE, Report

COST_KEYS = ("params", "trainable_params", "frozen_params", "macs", "activations")
Costs = tuple[int, int, int, int, int]  # in the order of COST_KEYS


class Failed(Exception):
    """A node or block could not be evaluated; its errors are already recorded."""


@dataclass
class NodeAccount:
    """Per-node totals across its instances; becomes a NodeReport at the end (plain attributes
    here because the walk updates them once per instance)."""

    id: str
    op: str
    frozen: bool
    status: str = "skipped"
    input_shapes: list[Sequence[int]] = field(default_factory=list)  # tuples or lists: JSON arrays either way
    output_shape: Sequence[int] | None = None
    dtype: str | None = None
    params: int = 0
    trainable_params: int = 0
    frozen_params: int = 0
    macs: int = 0
    activations: int = 0
    instances: int = 0
    formula: list[str] = field(default_factory=list)
    resolved: dict[str, Any] = field(default_factory=dict)
    first: bool = True
    encoded: bytes | None = None  # its JSON, made once the walk is over (a later walk may reuse it)

    def costs(self) -> Costs:
        return (self.params, self.trainable_params, self.frozen_params, self.macs, self.activations)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        del data["first"], data["encoded"]
        return data

    def to_json(self) -> bytes:
        if self.encoded is None:
            self.encoded = pydantic_core.to_json(self.to_dict())
        return self.encoded


class Ledger:
    def __init__(self) -> None:
        self.errors: list[GraphError] = []
        self.acc: dict[str, NodeAccount] = {}

    def error(self, node: str | None, message: str, *, field: str | None = None, suggestion: str | None = None,
              fix: dict[str, Any] | None = None, kind: Literal["error", "unconnected"] = "error") -> None:
        subject = f"{node}: " if node else ""
        self.errors.append(
            GraphError(node=node, field=field, message=subject + message, suggestion=suggestion, fix=fix, kind=kind)
        )
        if node in self.acc:
            self.acc[node].status = "error"

    def record(self, m: Any, inputs: list[TensorInfo], inf: Any, *, frozen: bool, size: int | None = None) -> None:
        """One instance of a layer: its shapes (from the first instance) and its costs. ``size``:
        its output's elements, when the caller has counted them."""
        r = self.acc[m.id]
        out = inf.out
        if r.first:  # shapes as tuples: they serialize as JSON arrays, and the Report makes them lists
            r.first = False
            r.status = "ok"
            r.input_shapes = [t.shape for t in inputs]
            r.output_shape = out.shape
            r.dtype = out.dtype
            r.formula = inf.formula
            r.resolved = inf.resolved
        r.instances += 1
        params = inf.params
        r.params += params
        if frozen:
            r.frozen_params += params
        else:
            r.trainable_params += params
        r.macs += inf.macs
        if m.op != "Output":  # the Output passes its input on: nothing new is stored
            r.activations += numel(out.shape) if size is None else size

    def costs(self, node_ids: list[str]) -> dict[str, Costs]:
        return {i: self.acc[i].costs() for i in node_ids}

    def record_block(self, b: Any, before: dict[str, Costs], x_in: TensorInfo, x_out: TensorInfo,
                     shortcut: tuple[int, int, int], *, frozen: bool) -> None:
        """One instance of a block: what its members (``before``: their costs when it began) added
        across all its copies, plus the (params, MACs, activations) of any projection shortcut."""
        totals = [0, 0, 0, 0, 0]
        for node_id, was in before.items():
            now = self.acc[node_id].costs()
            for k in range(5):
                totals[k] += now[k] - was[k]
        shortcut_params, shortcut_macs, shortcut_acts = shortcut
        p = b.params
        r = self.acc[b.id]
        r.status = "ok"
        r.instances += 1
        r.input_shapes = [list(x_in.shape)]
        r.output_shape = list(x_out.shape)
        r.dtype = x_out.dtype
        r.params += totals[0] + shortcut_params
        r.trainable_params += totals[1] + (0 if frozen else shortcut_params)
        r.frozen_params += totals[2] + (shortcut_params if frozen else 0)
        r.macs += totals[3] + shortcut_macs
        r.activations += totals[4] + shortcut_acts
        r.formula = [f"{p.repeat} × block: {fmt_shape(x_in.shape)} → {fmt_shape(x_out.shape)}"
                     + (" with a residual skip" if p.residual else "")]

    def report(self, g: Graph, by_id: dict[str, Any], out: TensorInfo | None, *, batch_size: int,
               optimizer: str) -> Report:
        """The report: every node, the top level's totals, the training memory estimate."""
        data = self.summary(g, by_id, out, batch_size=batch_size, optimizer=optimizer)
        # one validation pass in pydantic-core is much cheaper than a model per node
        return Report.model_validate(data | {"nodes": [a.to_dict() for a in self.acc.values()]})

    def report_json(self, g: Graph, by_id: dict[str, Any], out: TensorInfo | None, *, batch_size: int,
                    optimizer: str) -> bytes:
        """``report(...).model_dump_json()``, assembled from each node's JSON (kept on its account,
        so a later walk that keeps the account does not serialize it again)."""
        head = pydantic_core.to_json(self.summary(g, by_id, out, batch_size=batch_size, optimizer=optimizer))
        return head[:-1] + b',"nodes":[' + b",".join(map(NodeAccount.to_json, self.acc.values())) + b"]}"

    def summary(self, g: Graph, by_id: dict[str, Any], out: TensorInfo | None, *, batch_size: int,
                optimizer: str) -> dict[str, Any]:
        """The report but its nodes, as plain data."""
        top = [a for a in self.acc.values() if (n := by_id.get(a.id)) is not None and n.parent is None]
        sums = {k: sum(map(attrgetter(k), top)) for k in COST_KEYS}
        state = OPTIMIZER_STATE.get(optimizer, 2)
        b = BYTES_PER_ELEMENT
        mem = {
            "batch_size": batch_size,
            "optimizer": optimizer,
            "weights_bytes": sums["params"] * b,
            "gradients_bytes": sums["trainable_params"] * b,
            "optimizer_bytes": state * sums["trainable_params"] * b,
            "activations_bytes": batch_size * sums["activations"] * b,
        }
        mem["total_bytes"] = sum(v for k, v in mem.items() if k.endswith("_bytes"))
        inp = next((n for n in g.nodes if n.op == "Input"), None)
        valid = not self.errors and out is not None
        return {
            "format": "layerlab.report/1",
            "valid": valid,
            "input_shape": list(inp.params.shape) if inp is not None else None,
            "input_dtype": inp.params.dtype if inp is not None else None,
            "output_shape": list(out.shape) if out is not None and valid else None,
            "totals": sums | {"memory": mem},
            "errors": self.errors,
        }
