"""Layers that change the shape of a sample without weights: flatten, unflatten, resize, pad."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field

from .base import (
    Inferred,
    NodeProblem,
    OpSpec,
    Params,
    TensorInfo,
    TorchFunction,
    batch_dim_to_sample,
    check_rank,
    check_size,
    fmt_shape,
    ntuple,
    numel,
)
from .fields import (
    AXES,
    NonNeg,
    TorchDim,
    Width,
    as_given,
    torch_kw,
)
from .registry import register


class FlattenParams(Params):
    start_dim: TorchDim = Field(1, description="First dim to flatten, counted with the batch.")
    end_dim: TorchDim = Field(-1, description="Last dim to flatten, counted with the batch.")


@register
class Flatten(OpSpec):
    name = "Flatten"
    category = "Shape"
    help = "Flattens (C, H, W) into one feature vector, e.g. before a Linear layer."
    params_model = FlattenParams
    torch_class = "Flatten"
    # torch's own default start_dim is 0 (the batch); the op's is 1, so it is always passed on.
    functions = (TorchFunction("flatten", ("torch.flatten", "Tensor.flatten"), ("input", "start_dim", "end_dim"),
                               {"start_dim": 0, "end_dim": -1}, ("start_dim", "end_dim")),)
    dtype_in = None

    def infer(self, p: FlattenParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        a = batch_dim_to_sample(p.start_dim, len(x.shape), field_name="start_dim")
        b = batch_dim_to_sample(p.end_dim, len(x.shape), field_name="end_dim")
        if b < a:
            raise NodeProblem(f"end_dim={p.end_dim} comes before start_dim={p.start_dim}", field="end_dim")
        merged = numel(x.shape[a : b + 1])
        out = (*x.shape[:a], merged, *x.shape[b + 1 :])
        parts = "·".join(str(v) for v in x.shape[a : b + 1])
        return Inferred(
            out=TensorInfo(out, x.dtype),
            formula=[f"{parts} = {merged}"],
            torch_args=torch_kw(p, "start_dim", "end_dim"),
        )


class UnflattenParams(Params):
    dim: TorchDim = Field(1, description="Dim to split, counted with the batch.")
    unflattened_size: list[Width] = Field(
        [1, 8, 8], min_length=1, max_length=4, description="New sizes for that dim."
    )


@register
class Unflatten(OpSpec):
    name = "Unflatten"
    category = "Shape"
    help = "Splits one dimension into several, e.g. 64 → (1, 8, 8)."
    params_model = UnflattenParams
    torch_class = "Unflatten"
    positional = ("dim", "unflattened_size")
    dtype_in = None

    def infer(self, p: UnflattenParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        axis = batch_dim_to_sample(p.dim, len(x.shape))
        sizes = tuple(p.unflattened_size)
        if numel(sizes) != x.shape[axis]:
            raise NodeProblem(
                f"unflattened_size={list(sizes)} holds {numel(sizes)} elements but dim {p.dim} has "
                f"{x.shape[axis]}; received {x.describe()}",
                field="unflattened_size",
            )
        out = (*x.shape[:axis], *sizes, *x.shape[axis + 1 :])
        return Inferred(
            out=TensorInfo(out, x.dtype),
            formula=[f"{x.shape[axis]} → {fmt_shape(sizes)}"],
            torch_args={"dim": p.dim, "unflattened_size": list(sizes)},
        )


class UpsampleParams(Params):
    size: Width | tuple[Width, Width] | None = Field(None, description="Target size (or use scale_factor).")
    scale_factor: Annotated[float, Field(gt=0, le=64)] | None = Field(2.0, description="Size multiplier.")
    mode: Literal["nearest", "nearest-exact", "linear", "bilinear", "bicubic"] = Field(
        "nearest", description="Interpolation."
    )
    align_corners: bool | None = Field(None, description="For linear/bilinear/bicubic only.")


@register
class Upsample(OpSpec):
    name = "Upsample"
    category = "Shape"
    help = "Resizes (C, L) or (C, H, W) by interpolation, without weights."
    params_model = UpsampleParams
    torch_class = "Upsample"

    def infer(self, p: UpsampleParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        check_rank(x, (2, 3), "channels and 1 or 2 spatial dims")
        n = len(x.shape) - 1
        # scale_factor has a default (2.0) so a bare Upsample doubles; a given size replaces it.
        scale = None if p.size is not None and "scale_factor" not in p.model_fields_set else p.scale_factor
        if (p.size is None) == (scale is None):
            raise NodeProblem("give exactly one of size and scale_factor", field="size")
        if p.mode in ("linear",) and n != 1 or p.mode in ("bilinear", "bicubic") and n != 2:
            raise NodeProblem(
                f"mode={p.mode!r} does not fit a {n}-D spatial input {x.describe()}", field="mode"
            )
        if p.align_corners is not None and p.mode in ("nearest", "nearest-exact"):
            raise NodeProblem("align_corners only applies to linear, bilinear and bicubic", field="align_corners")
        if p.size is not None:
            out_sp = ntuple(p.size, n)
            formula = [f"{a}: → {o}" for a, o in zip(AXES[n], out_sp)]
        else:
            out_sp = tuple(math.floor(s * scale) for s in x.shape[1:])
            formula = [f"{a}: floor({s}·{scale}) = {o}" for a, s, o in zip(AXES[n], x.shape[1:], out_sp)]
        for a, o in zip(AXES[n], out_sp):
            check_size(o, f"output {a}")
        args: dict[str, Any] = {}
        if p.size is not None:
            args["size"] = as_given(p.size)
        else:
            args["scale_factor"] = scale
        args |= torch_kw(p, "mode", "align_corners")
        return Inferred(out=TensorInfo((x.shape[0], *out_sp)), formula=formula, torch_args=args)


class ZeroPad2dParams(Params):
    padding: NonNeg | tuple[NonNeg, NonNeg, NonNeg, NonNeg] = Field(
        1, description="Zeros on each side, or [left, right, top, bottom]."
    )


@register
class ZeroPad2d(OpSpec):
    name = "ZeroPad2d"
    category = "Shape"
    help = "Pads H and W with zeros (also for asymmetric padding)."
    params_model = ZeroPad2dParams
    torch_class = "ZeroPad2d"
    positional = ("padding",)

    def infer(self, p: ZeroPad2dParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        check_rank(x, (3,), "channels, H, W")
        left, right, top, bottom = ntuple(p.padding, 4)
        h, w = x.shape[1] + top + bottom, x.shape[2] + left + right
        return Inferred(
            out=TensorInfo((x.shape[0], h, w)),
            formula=[f"H: {x.shape[1]} + {top} + {bottom} = {h}", f"W: {x.shape[2]} + {left} + {right} = {w}"],
            resolved={"padding": [left, right, top, bottom]},
            torch_args={"padding": as_given(p.padding)},
        )
