"""What the shapes stage reports: per node, its shapes, parameters, MACs and activations, and
for the model, the totals and a memory estimate for training."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ..graph import GraphError

BYTES_PER_ELEMENT = 4  # fp32
# Optimizer state per trainable parameter, with the run form's default momentum (0.9): SGD keeps a
# momentum buffer, Adam and AdamW two moments, RMSprop its square average and a momentum buffer.
# (With momentum 0, SGD keeps none and RMSprop one: the estimate is then a buffer too high.)
OPTIMIZER_STATE = {"sgd": 1, "adam": 2, "adamw": 2, "rmsprop": 2}
OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop"]


def format_bytes(n: int) -> str:
    """A size as people read it in an error: GiB from a quarter GiB up, MiB from 1 MiB, else KiB."""
    if n >= 2**28:
        return f"{n / 2**30:,.2f} GiB"
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 2**10:,.1f} KiB"


class NodeReport(BaseModel):
    id: str
    op: str
    status: Literal["ok", "error", "skipped"] = "ok"
    input_shapes: list[list[int]] = Field(default_factory=list)
    output_shape: list[int] | None = None
    dtype: str | None = None
    params: int = 0
    trainable_params: int = 0
    frozen_params: int = 0
    frozen: bool = False
    macs: int = 0
    activations: int = Field(0, description="Output elements per sample (all copies).")
    instances: int = Field(0, description="How many times the node runs (copies of a repeated block).")
    formula: list[str] = Field(default_factory=list, description="How the size came about, numbers substituted.")
    resolved: dict[str, Any] = Field(default_factory=dict, description="e.g. the padding 'same' resolved to.")


class MemoryEstimate(BaseModel):
    batch_size: int
    optimizer: str
    weights_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    activations_bytes: int
    total_bytes: int


class Totals(BaseModel):
    params: int = 0
    trainable_params: int = 0
    frozen_params: int = 0
    macs: int = 0
    activations: int = 0
    memory: MemoryEstimate | None = None


class Report(BaseModel):
    format: Literal["layerlab.report/1"] = "layerlab.report/1"
    valid: bool
    input_shape: list[int] | None = None
    input_dtype: str | None = None
    output_shape: list[int] | None = None
    nodes: list[NodeReport] = Field(default_factory=list)
    totals: Totals = Field(default_factory=Totals)
    errors: list[GraphError] = Field(default_factory=list)

    def node(self, node_id: str) -> NodeReport:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)
