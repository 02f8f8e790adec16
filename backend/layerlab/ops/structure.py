"""Graph-level nodes: the Input, the Output and the Block (no torch module of their own)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import (
    MAX_DIM,
    Inferred,
    NodeProblem,
    OpSpec,
    Params,
    TensorInfo,
    fmt_shape,
    numel,
)
from .registry import register


class InputParams(Params):
    shape: list[Annotated[int, Field(ge=1, le=MAX_DIM, strict=True)]] = Field(
        min_length=1, max_length=4, description="Per-sample input shape, e.g. [1, 28, 28] or [64]."
    )
    dtype: Literal["float32", "int64"] = Field(
        "float32", description="Element type: int64 for token ids feeding an Embedding."
    )


@register
class Input(OpSpec):
    name = "Input"
    category = "Input / Output"
    help = "The model's input: declares the per-sample shape (no batch dimension)."
    params_model = InputParams
    min_inputs = 0
    max_inputs = 0
    dtype_in = None

    def infer(self, p: InputParams, inputs: list[TensorInfo]) -> Inferred:
        shape = tuple(p.shape)
        if numel(shape) > (1 << 31):
            raise NodeProblem(f"input shape {fmt_shape(shape)} has more than 2^31 elements", field="shape")
        return Inferred(out=TensorInfo(shape, p.dtype), formula=[f"input {fmt_shape(shape)}"])


class OutputParams(Params):
    pass


@register
class Output(OpSpec):
    name = "Output"
    category = "Input / Output"
    help = "The model's output: whatever arrives here is what forward() returns."
    params_model = OutputParams
    dtype_in = None
    max_inputs = 1

    def infer(self, p: OutputParams, inputs: list[TensorInfo]) -> Inferred:
        return Inferred(out=inputs[0])


class BlockParams(Params):
    repeat: Annotated[int, Field(ge=1, le=64, strict=True)] = Field(
        1, description="Number of copies of the block, each with its own weights."
    )
    residual: bool = Field(False, description="Add a skip connection: out = body(x) + shortcut(x).")
    shortcut: Literal["auto", "identity", "projection"] = Field(
        "auto",
        description="identity adds x as is; projection is a 1×1 conv (+ BatchNorm) with the needed "
        "stride; auto picks identity when the shapes match.",
    )


@register
class Block(OpSpec):
    """Shape rule lives in the analysis: a block is its children, repeated and maybe residual."""

    name = "Block"
    category = "Structure"
    help = "A group of layers compiled to a nested nn.Sequential; can repeat and add a residual skip."
    params_model = BlockParams
    dtype_in = None

    def infer(self, p: BlockParams, inputs: list[TensorInfo]) -> Inferred:  # pragma: no cover
        raise RuntimeError("blocks are inferred from their children")
