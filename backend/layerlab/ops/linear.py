"""Linear and Embedding."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from .base import (
    MAX_DIM,
    Inferred,
    NodeProblem,
    OpSpec,
    Params,
    TensorInfo,
    check_declared,
    fmt_shape,
    numel,
)
from .fields import (
    Width,
    need_flat,
    torch_kw,
)
from .registry import register


class LinearParams(Params):
    in_features: Width | None = Field(None, description="Inferred from the incoming shape.")
    out_features: Width = Field(10, description="Number of output features.")
    bias: bool = Field(True, description="Learn an additive bias per output feature.")


@register
class Linear(OpSpec):
    name = "Linear"
    category = "Linear"
    help = "Fully connected layer: y = x·Wᵀ + b over the last dimension."
    params_model = LinearParams
    torch_class = "Linear"
    positional = ("in_features", "out_features")
    input_size_args = ("in_features",)
    init_weight = True

    def infer(self, p: LinearParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        need_flat(x, "Linear")
        f_in = x.shape[-1]
        check_declared(p, "in_features", f_in, source="features")
        out = (*x.shape[:-1], p.out_features)
        rows = numel(x.shape[:-1])
        return Inferred(
            out=TensorInfo(out),
            params=f_in * p.out_features + (p.out_features if p.bias else 0),
            macs=rows * f_in * p.out_features,
            formula=[f"features: {f_in} → {p.out_features}"],
            torch_args={"in_features": f_in, "out_features": p.out_features} | torch_kw(p, "bias"),
        )


class EmbeddingParams(Params):
    num_embeddings: Width = Field(1000, description="Vocabulary size: ids run from 0 to this − 1.")
    embedding_dim: Width = Field(64, description="Length of each embedding vector.")
    padding_idx: Annotated[int, Field(ge=0, le=MAX_DIM, strict=True)] | None = Field(
        None, description="An id whose vector stays zero and gets no gradient."
    )


@register
class Embedding(OpSpec):
    name = "Embedding"
    category = "Linear"
    help = "Lookup table from integer ids to learned vectors: (L,) → (L, D)."
    params_model = EmbeddingParams
    torch_class = "Embedding"
    positional = ("num_embeddings", "embedding_dim")
    dtype_in = "int64"
    init_weight = True

    def init_targets(self, torch_args: dict[str, Any]) -> tuple[list[str], list[str]]:
        return ["weight"], []  # a lookup table has no bias

    def infer(self, p: EmbeddingParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        if p.padding_idx is not None and p.padding_idx >= p.num_embeddings:
            raise NodeProblem(
                f"padding_idx={p.padding_idx} must be below num_embeddings={p.num_embeddings}",
                field="padding_idx",
            )
        out = (*x.shape, p.embedding_dim)
        return Inferred(
            out=TensorInfo(out),
            params=p.num_embeddings * p.embedding_dim,
            formula=[f"{x.describe()} ids → {fmt_shape(out)}"],
            torch_args={"num_embeddings": p.num_embeddings, "embedding_dim": p.embedding_dim}
            | torch_kw(p, "padding_idx"),
        )
