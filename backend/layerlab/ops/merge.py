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
    fmt_shape,
    numel,
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


class MultiplyParams(Params):
    pass


@register
class Multiply(OpSpec):
    name = "Multiply"
    category = "Merge"
    help = ("Element-wise product of its inputs, broadcasting sizes of 1: a gate, e.g. (C, H, W) × (C, 1, 1) "
            "in squeeze-and-excitation.")
    params_model = MultiplyParams
    min_inputs = 2
    max_inputs = 8
    merge = MergeRule("operator.mul", infix="*")
    functions = (TorchFunction("mul", ("operator.mul", "operator.imul", "torch.mul", "Tensor.mul", "Tensor.mul_"),
                               ("input", "other")),)

    def infer(self, p: MultiplyParams, inputs: list[TensorInfo]) -> Inferred:
        shape = inputs[0].shape
        for other in inputs[1:]:
            # every input has the batch dim first, so the per-sample ranks must agree for it to stay aligned
            if len(other.shape) != len(shape) or any(a != b and 1 not in (a, b) for a, b in zip(shape, other.shape)):
                raise NodeProblem(
                    f"Multiply needs shapes that broadcast (equal sizes, or 1), received "
                    f"{inputs[0].describe()} and {other.describe()}",
                    suggestion="give the gate the same rank, with size 1 where it is shared, e.g. (C, 1, 1)",
                )
            shape = tuple(max(a, b) for a, b in zip(shape, other.shape))
        return Inferred(out=TensorInfo(shape), macs=numel(shape) * (len(inputs) - 1),
                        formula=[" × ".join(i.describe() for i in inputs) + f" = {fmt_shape(shape)}"])


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


