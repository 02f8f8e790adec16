"""Merge ops: functions in forward() that join branches, no module."""

from __future__ import annotations

from pydantic import Field

from .base import (
    Inferred,
    MergeRule,
    NodeProblem,
    OpSpec,
    Params,
    TensorInfo,
    TorchFunction,
    batch_dim_to_sample,
)
from .fields import (
    TorchDim,
)
from .registry import register


class AddParams(Params):
    pass


@register
class Add(OpSpec):
    name = "Add"
    category = "Merge"
    help = "Element-wise sum of its inputs (residual connections); shapes must match."
    params_model = AddParams
    min_inputs = 2
    max_inputs = 8
    merge = MergeRule("operator.add", infix="+")
    functions = (TorchFunction("add", ("operator.add", "operator.iadd", "torch.add", "Tensor.add", "Tensor.add_"),
                               ("input", "other", "alpha"), {"alpha": 1}, must_be={"alpha": 1}),)

    def infer(self, p: AddParams, inputs: list[TensorInfo]) -> Inferred:
        first = inputs[0]
        for other in inputs[1:]:
            if other.shape != first.shape:
                raise NodeProblem(
                    f"Add needs equal shapes, received {first.describe()} and {other.describe()}",
                    suggestion="make the branches agree, e.g. a 1×1 Conv2d (projection) on one branch",
                )
        return Inferred(out=first, formula=[" + ".join(i.describe() for i in inputs)])


class ConcatParams(Params):
    dim: TorchDim = Field(1, description="Dim to join along, counted with the batch (1 = channels).")


@register
class Concat(OpSpec):
    name = "Concat"
    category = "Merge"
    help = "torch.cat of its inputs along dim (Inception / U-Net branches), in edge order."
    params_model = ConcatParams
    min_inputs = 2
    max_inputs = 8
    merge = MergeRule("torch.cat", kwargs=("dim",))
    functions = (TorchFunction("cat", ("torch.cat", "torch.concat", "torch.concatenate"), ("tensors", "dim"),
                               {"dim": 0}, ("dim",)),)
    dtype_in = None

    def infer(self, p: ConcatParams, inputs: list[TensorInfo]) -> Inferred:
        first = inputs[0]
        axis = batch_dim_to_sample(p.dim, len(first.shape))
        for other in inputs[1:]:
            same_rank = len(other.shape) == len(first.shape)
            rest_equal = same_rank and all(
                a == b for i, (a, b) in enumerate(zip(first.shape, other.shape)) if i != axis
            )
            if not rest_equal:
                raise NodeProblem(
                    f"Concat along dim {p.dim} needs the other dims equal, received "
                    f"{first.describe()} and {other.describe()}",
                    field="dim",
                )
        total = sum(i.shape[axis] for i in inputs)
        out = (*first.shape[:axis], total, *first.shape[axis + 1 :])
        parts = " + ".join(str(i.shape[axis]) for i in inputs)
        # torch.cat promotes: ids joined with floats are floats
        dtype = "float32" if any(i.dtype == "float32" for i in inputs) else first.dtype
        return Inferred(out=TensorInfo(out, dtype), formula=[f"dim {p.dim}: {parts} = {total}"])


