"""Normalization layers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from .base import (
    Inferred,
    NodeProblem,
    OpSpec,
    Params,
    TensorInfo,
    check_declared,
    check_rank,
    numel,
)
from .fields import (
    Width,
    torch_kw,
)
from .registry import register


class _BatchNormBase(OpSpec):
    category = "Normalization"
    positional = ("num_features",)
    input_size_args = ("num_features",)
    ranks: tuple[int, ...]
    what: str

    def infer(self, p: Any, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        check_rank(x, self.ranks, self.what)
        c = x.shape[0]
        check_declared(p, "num_features", c, source="channels")
        return Inferred(
            out=x,
            params=2 * c if p.affine else 0,
            macs=numel(x.shape),
            formula=[f"normalizes {c} channels, shape kept {x.describe()}"],
            torch_args={"num_features": c} | torch_kw(p, "eps", "momentum", "affine", "track_running_stats"),
        )


class BatchNormParams(Params):
    num_features: Width | None = Field(None, description="Inferred: the number of channels.")
    eps: Annotated[float, Field(gt=0, le=1)] = Field(1e-5, description="Added to the variance.")
    momentum: Annotated[float, Field(ge=0, le=1)] | None = Field(
        0.1, description="Running-statistics update rate (None: cumulative average)."
    )
    affine: bool = Field(True, description="Learn a scale (weight) and shift (bias).")
    track_running_stats: bool = Field(True, description="Keep running mean/var for eval mode.")


@register
class BatchNorm1d(_BatchNormBase):
    name = "BatchNorm1d"
    help = "Batch normalization over (C,) or (C, L); uses running stats in eval mode."
    params_model = BatchNormParams
    torch_class = "BatchNorm1d"
    ranks = (1, 2)
    what = "features, or channels and length"


@register
class BatchNorm2d(_BatchNormBase):
    name = "BatchNorm2d"
    help = "Batch normalization over (C, H, W); uses running stats in eval mode."
    params_model = BatchNormParams
    torch_class = "BatchNorm2d"
    ranks = (3,)
    what = "channels, H, W"


class InstanceNormParams(Params):
    num_features: Width | None = Field(None, description="Inferred: the number of channels.")
    eps: Annotated[float, Field(gt=0, le=1)] = Field(1e-5, description="Added to the variance.")
    momentum: Annotated[float, Field(ge=0, le=1)] | None = Field(0.1, description="Running-stats rate.")
    affine: bool = Field(False, description="Learn a scale and shift per channel.")
    track_running_stats: bool = Field(False, description="Keep running mean/var for eval mode.")


@register
class InstanceNorm2d(_BatchNormBase):
    name = "InstanceNorm2d"
    help = "Normalizes each channel of each sample on its own (style transfer, GANs)."
    params_model = InstanceNormParams
    torch_class = "InstanceNorm2d"
    ranks = (3,)
    what = "channels, H, W"

    def infer(self, p: InstanceNormParams, inputs: list[TensorInfo]) -> Inferred:
        inferred = super().infer(p, inputs)
        h, w = inputs[0].shape[1:]
        if h * w == 1:  # statistics of one value per channel: torch refuses it when training
            raise NodeProblem(
                f"InstanceNorm2d needs more than one spatial element per channel, received {inputs[0].describe()}",
                suggestion="move it before the layer that shrinks H×W to 1×1, or use LayerNorm",
            )
        return inferred


class LayerNormParams(Params):
    normalized_shape: list[Width] | None = Field(
        None, description="Trailing dims to normalize over; inferred as the last dimension."
    )
    eps: Annotated[float, Field(gt=0, le=1)] = Field(1e-5, description="Added to the variance.")
    elementwise_affine: bool = Field(True, description="Learn a scale per element.")
    bias: bool = Field(True, description="Learn a shift per element (with elementwise_affine).")


@register
class LayerNorm(OpSpec):
    name = "LayerNorm"
    category = "Normalization"
    help = "Normalizes each sample over its trailing dimensions (transformers, MLPs)."
    params_model = LayerNormParams
    torch_class = "LayerNorm"
    positional = ("normalized_shape",)
    input_size_args = ("normalized_shape",)

    def infer(self, p: LayerNormParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        shape = list(p.normalized_shape) if p.normalized_shape else [x.shape[-1]]
        if len(shape) > len(x.shape) or list(x.shape[len(x.shape) - len(shape):]) != shape:
            raise NodeProblem(
                f"normalized_shape={shape} disagrees with the trailing dims of the input {x.describe()}",
                field="normalized_shape",
                suggestion=f"remove normalized_shape or set it to {list(x.shape[-len(shape):])}",
            )
        n = numel(tuple(shape))
        params = (n + (n if p.bias else 0)) if p.elementwise_affine else 0
        return Inferred(
            out=x,
            params=params,
            macs=numel(x.shape),
            formula=[f"normalizes over {shape}, shape kept {x.describe()}"],
            torch_args={"normalized_shape": shape} | torch_kw(p, "eps", "elementwise_affine", "bias"),
        )


class GroupNormParams(Params):
    num_groups: Width = Field(8, description="Channels are split into this many groups.")
    num_channels: Width | None = Field(None, description="Inferred: the number of channels.")
    eps: Annotated[float, Field(gt=0, le=1)] = Field(1e-5, description="Added to the variance.")
    affine: bool = Field(True, description="Learn a scale and shift per channel.")


@register
class GroupNorm(OpSpec):
    name = "GroupNorm"
    category = "Normalization"
    help = "Normalizes groups of channels per sample; independent of the batch size."
    params_model = GroupNormParams
    torch_class = "GroupNorm"
    positional = ("num_groups", "num_channels")
    input_size_args = ("num_channels",)

    def infer(self, p: GroupNormParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        c = x.shape[0]
        check_declared(p, "num_channels", c, source="channels")
        if c % p.num_groups:
            raise NodeProblem(
                f"num_groups={p.num_groups} does not divide the {c} channels of the input {x.describe()}",
                field="num_groups",
                suggestion="pick a divisor of " + str(c),
            )
        return Inferred(
            out=x,
            params=2 * c if p.affine else 0,
            macs=numel(x.shape),
            formula=[f"{p.num_groups} groups of {c // p.num_groups} channels, shape kept {x.describe()}"],
            torch_args={"num_groups": p.num_groups, "num_channels": c} | torch_kw(p, "eps", "affine"),
        )
