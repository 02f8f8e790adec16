"""Layers that change the shape of a sample without weights: flatten, unflatten, resize, pad."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field

from .base import (
    MAX_DIM,
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
    F,
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


def _sample_axes(dims: list[int], rank: int, field_name: str) -> list[int]:
    """Torch dims (counted with the batch) as per-sample axes, each once."""
    axes = [batch_dim_to_sample(d, rank, field_name=field_name) for d in dims]
    if len(set(axes)) != len(axes):
        raise NodeProblem(f"{field_name}={dims} names a dimension twice", field=field_name)
    return axes


class PermuteParams(Params):
    dims: list[TorchDim] = Field(
        [0, 2, 1], min_length=2, max_length=5,
        description="The new order of all dims, counted with the batch, which stays first (0).",
    )


@register
class Permute(OpSpec):
    name = "Permute"
    category = "Shape"
    help = "Reorders dimensions, e.g. (L, D) → (D, L) with dims [0, 2, 1]; the batch stays first."
    params_model = PermuteParams
    torch_class = "Permute"
    custom_module = True
    positional = ("dims",)
    dtype_in = None
    functions = (
        TorchFunction("permute", ("torch.permute", "Tensor.permute"), ("input", "dims"), params=("dims",),
                      varargs="dims"),
        TorchFunction("transpose", ("torch.transpose", "Tensor.transpose", "torch.swapaxes", "Tensor.swapaxes"),
                      ("input", "dim0", "dim1")),
    )

    def infer(self, p: PermuteParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        rank = len(x.shape) + 1
        if len(p.dims) != rank:
            raise NodeProblem(
                f"dims={p.dims} must name all {rank} dims of the input (batch included), received {x.describe()}",
                field="dims",
            )
        if not -rank <= p.dims[0] < rank:
            raise NodeProblem(f"dims={p.dims}: {p.dims[0]} is out of range for {rank} dims (batch included)",
                              field="dims")
        if p.dims[0] % rank != 0:
            raise NodeProblem(f"dims={p.dims} must keep the batch dim first (0)", field="dims",
                              suggestion="start dims with 0")
        axes = _sample_axes(list(p.dims[1:]), len(x.shape), "dims")
        out = tuple(x.shape[a] for a in axes)
        dims = [d % rank for d in p.dims]
        return Inferred(out=TensorInfo(out, x.dtype), formula=[f"{x.describe()} → {fmt_shape(out)} (dims {dims})"],
                        torch_args={"dims": dims})

    def params_from_call(self, fn: TorchFunction, args: dict[str, Any], in_shape: tuple[int, ...]) -> dict[str, Any]:
        if fn.key != "transpose":
            dims = args["dims"]
            return {"dims": list(dims[0] if len(dims) == 1 and isinstance(dims[0], (list, tuple)) else dims)}
        rank = len(in_shape) + 1
        dims = list(range(rank))
        a, b = args["dim0"] % rank, args["dim1"] % rank
        dims[a], dims[b] = dims[b], dims[a]
        return {"dims": dims}


class ReshapeParams(Params):
    shape: list[Annotated[int, Field(ge=-1, le=MAX_DIM, strict=True)]] = Field(
        [-1], min_length=1, max_length=5,
        description="The new per-sample shape (no batch dim); one size may be -1, inferred.",
    )


@register
class Reshape(OpSpec):
    name = "Reshape"
    category = "Shape"
    help = "A new per-sample shape with the same elements, e.g. (64,) → (4, 16); -1 infers one size."
    params_model = ReshapeParams
    torch_class = "Reshape"
    custom_module = True
    positional = ("shape",)
    dtype_in = None

    def infer(self, p: ReshapeParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        total = numel(x.shape)
        sizes = list(p.shape)
        if 0 in sizes:
            raise NodeProblem(f"shape={sizes} has a size 0", field="shape")
        free = [i for i, v in enumerate(sizes) if v == -1]
        if len(free) > 1:
            raise NodeProblem(f"shape={sizes} has more than one -1", field="shape")
        known = numel(tuple(v for v in sizes if v != -1))
        if free:
            if total % known:
                raise NodeProblem(f"shape={sizes}: {total} elements do not divide into parts of {known}; "
                                  f"received {x.describe()}", field="shape")
            sizes[free[0]] = total // known
        if numel(tuple(sizes)) != total:
            raise NodeProblem(f"shape={list(p.shape)} holds {numel(tuple(sizes))} elements but the input "
                              f"{x.describe()} has {total}", field="shape")
        out = tuple(sizes)
        return Inferred(out=TensorInfo(out, x.dtype), formula=[f"{x.describe()} → {fmt_shape(out)}"],
                        torch_args={"shape": list(p.shape)})


class MeanParams(Params):
    dim: TorchDim | list[TorchDim] = Field(
        -1, description="Dim or dims to average over, counted with the batch (e.g. [2, 3] for H and W)."
    )
    keepdim: bool = Field(False, description="Keep the averaged dims as size 1.")


@register
class Mean(OpSpec):
    name = "Mean"
    category = "Pooling"
    help = "Averages over one or more dims: x.mean([2, 3]) is global average pooling of (C, H, W)."
    params_model = MeanParams
    torch_class = "Mean"
    custom_module = True
    positional = ("dim",)
    functions = (TorchFunction("mean", ("torch.mean", "Tensor.mean"), ("input", "dim", "keepdim", "dtype"),
                               {"dim": None, "keepdim": False, "dtype": None}, ("dim", "keepdim"),
                               must_be={"dtype": None}, required=("dim",)),)

    def infer(self, p: MeanParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        dims = list(p.dim) if isinstance(p.dim, (list, tuple)) else [p.dim]
        if not dims:
            raise NodeProblem("dim=[] averages nothing", field="dim")
        axes = set(_sample_axes(dims, len(x.shape), "dim"))
        if p.keepdim:
            out = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
        else:
            out = tuple(s for i, s in enumerate(x.shape) if i not in axes)
        if not out:
            raise NodeProblem(f"dim={p.dim} averages every dim of {x.describe()}, leaving no per-sample value",
                              field="dim", suggestion="keep one dim, or set keepdim")
        return Inferred(out=TensorInfo(out), macs=numel(x.shape), formula=[f"mean over {dims}: {x.describe()} → "
                                                                           f"{fmt_shape(out)}"],
                        torch_args={"dim": as_given(p.dim)} | torch_kw(p, "keepdim"))


class SelectParams(Params):
    dim: TorchDim = Field(1, description="The dim to take one position of, counted with the batch.")
    index: Annotated[int, Field(ge=-MAX_DIM, lt=MAX_DIM, strict=True)] = Field(
        0, description="The position along dim; negative counts from the end (-1: the last)."
    )


@register
class Select(OpSpec):
    name = "Select"
    category = "Shape"
    help = "Takes one position along a dim, which goes away: x[:, 0] is a ViT's class token, (L, D) → (D)."
    params_model = SelectParams
    torch_class = "Select"
    custom_module = True
    positional = ("dim", "index")
    dtype_in = None
    functions = (TorchFunction("select", ("torch.select", "Tensor.select"), ("input", "dim", "index"),
                               params=("dim", "index"), required=("dim", "index")),)

    def infer(self, p: SelectParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        axis = batch_dim_to_sample(p.dim, len(x.shape))
        size = x.shape[axis]
        if not -size <= p.index < size:
            raise NodeProblem(f"index={p.index} is out of range for dim {p.dim} of size {size}; received "
                              f"{x.describe()}", field="index", suggestion=f"use an index from {-size} to {size - 1}")
        out = x.shape[:axis] + x.shape[axis + 1 :]
        if not out:
            raise NodeProblem(f"selecting from {x.describe()} leaves no per-sample value", field="dim")
        return Inferred(out=TensorInfo(out, x.dtype), formula=[f"[{p.index}] along dim {p.dim}: {x.describe()} → "
                                                               f"{fmt_shape(out)}"],
                        torch_args={"dim": p.dim, "index": p.index})


class PixelShuffleParams(Params):
    upscale_factor: Annotated[int, Field(ge=1, le=64, strict=True)] = Field(
        2, description="r: (C·r², H, W) → (C, H·r, W·r)."
    )


@register
class PixelShuffle(OpSpec):
    name = "PixelShuffle"
    category = "Shape"
    help = "Moves channels into space: (C·r², H, W) → (C, H·r, W·r) (sub-pixel upsampling)."
    params_model = PixelShuffleParams
    torch_class = "PixelShuffle"
    positional = ("upscale_factor",)
    dtype_in = None
    functions = (TorchFunction("pixel_shuffle", (F + "pixel_shuffle", "torch.pixel_shuffle"),
                               ("input", "upscale_factor"), params=("upscale_factor",)),)

    def infer(self, p: PixelShuffleParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        check_rank(x, (3,), "channels, H, W")
        r = p.upscale_factor
        c, h, w = x.shape
        if c % (r * r):
            raise NodeProblem(f"upscale_factor={r} needs channels divisible by {r * r}, received {x.describe()}",
                              field="upscale_factor", suggestion=f"give it {r * r}·k channels")
        out = (c // (r * r), h * r, w * r)
        check_size(out[1], "output H")
        check_size(out[2], "output W")
        return Inferred(out=TensorInfo(out, x.dtype), formula=[f"C: {c} / {r}² = {out[0]}", f"H: {h}·{r} = {out[1]}",
                                                              f"W: {w}·{r} = {out[2]}"],
                        torch_args={"upscale_factor": r})
