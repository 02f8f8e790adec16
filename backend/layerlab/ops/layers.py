"""The catalog entries. Each class is one op: its parameters (torch.nn argument names), its
palette category, its shape and cost rule, and the torch constructor arguments it builds with.

Adding an op is one class here plus its tests (tests/test_ops.py checks it against torch).
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any, Literal

from pydantic import Field

from .base import (
    MAX_DIM,
    MAX_KERNEL,
    DType,
    Inferred,
    NodeProblem,
    OpSpec,
    Params,
    TensorInfo,
    batch_dim_to_sample,
    check_declared,
    check_rank,
    check_size,
    conv_out,
    conv_transpose_out,
    fmt_shape,
    ntuple,
    numel,
    pool_out,
    same_padding,
)
from .registry import register

# strict: JSON true is not the integer 1, nor "3" the integer 3
Width = Annotated[int, Field(ge=1, le=MAX_DIM, strict=True)]
Kernel = Annotated[int, Field(ge=1, le=MAX_KERNEL, strict=True)]
NonNeg = Annotated[int, Field(ge=0, le=MAX_KERNEL, strict=True)]
Prob = Annotated[float, Field(ge=0.0, le=1.0)]
TorchDim = Annotated[int, Field(ge=-8, le=8, strict=True)]
PadMode = Literal["same", "valid"]

AXES = {1: ("L",), 2: ("H", "W")}

FLATTEN_FIX = "insert Flatten before {node}"


@functools.cache
def _defaults(model: type[Params]) -> dict[str, Any]:
    return {name: f.default for name, f in model.model_fields.items()}


def _kw(p: Params, *names: str) -> dict[str, Any]:
    """Constructor args that differ from their torch defaults (the params model's defaults)."""
    defaults = _defaults(type(p))
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(p, name)
        if value != defaults[name]:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _given(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _need_flat(x: TensorInfo, op: str, ranks: tuple[int, ...] = (1, 2)) -> None:
    if len(x.shape) not in ranks:
        raise NodeProblem(
            f"{op} works on a vector of features per sample, received {x.describe()} "
            f"({len(x.shape) + 1}-D with the batch)",
            suggestion=FLATTEN_FIX,
            fix={"action": "insert_before", "op": "Flatten"},
        )


# =============================================================================================
# Input / Output / Structure: graph-level nodes (no torch module of their own)


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


# =============================================================================================
# Convolution


class _ConvBase(OpSpec):
    category = "Convolution"
    positional = ("in_channels", "out_channels")
    input_size_args = ("in_channels",)
    dims: int

    def infer(self, p: Any, inputs: list[TensorInfo]) -> Inferred:
        n = self.dims
        x = inputs[0]
        check_rank(x, (n + 1,), "channels, " + ", ".join(AXES[n]))
        c_in, spatial = x.shape[0], x.shape[1:]
        check_declared(p, "in_channels", c_in, source="channels")
        if c_in % p.groups or p.out_channels % p.groups:
            raise NodeProblem(
                f"groups={p.groups} must divide both in_channels={c_in} and out_channels={p.out_channels}",
                field="groups",
            )
        k, s, d = ntuple(p.kernel_size, n), ntuple(p.stride, n), ntuple(p.dilation, n)
        resolved: dict[str, Any] = {}
        if p.padding == "same":
            if any(si != 1 for si in s):
                raise NodeProblem(
                    f"padding='same' needs stride 1 (torch refuses it otherwise); received stride={_given(p.stride)}",
                    field="padding",
                    suggestion=f"use padding={(k[0] - 1) // 2 * d[0]} with stride {s[0]}, which gives "
                    f"ceil(size/{s[0]}) for an odd kernel",
                )
            pads = [same_padding(ki, di) for ki, di in zip(k, d)]
            resolved["padding"] = [list(pr) for pr in pads]
        elif p.padding == "valid":
            pads = [(0, 0)] * n
        else:
            pads = [(pi, pi) for pi in ntuple(p.padding, n)]
        out_sp, formula = [], []
        for axis, size, ki, si, di, (pl, pr) in zip(AXES[n], spatial, k, s, d, pads):
            span = di * (ki - 1) + 1
            if span > size + pl + pr:
                kdesc = "×".join(str(v) for v in k)
                sdesc = "×".join(str(v) for v in spatial)
                raise NodeProblem(
                    f"kernel {kdesc} (dilation {di}) spans {span} but the padded input is only "
                    f"{size + pl + pr} along {axis}; received input {x.describe()}",
                    field="kernel_size",
                    suggestion=f"kernel {kdesc} exceeds the {sdesc} input: use padding='same' or a smaller kernel",
                )
            # torch pads by reflection only with padding < size, circularly only with padding ≤ size
            too_wide = max(pl, pr) >= size if p.padding_mode == "reflect" else max(pl, pr) > size
            if p.padding_mode in ("reflect", "circular") and too_wide:
                limit = f"less than {size}" if p.padding_mode == "reflect" else f"at most {size}"
                raise NodeProblem(
                    f"padding_mode={p.padding_mode!r} needs padding {limit} along {axis}, received padding "
                    f"{max(pl, pr)} for input {x.describe()}",
                    field="padding",
                    suggestion="use less padding or padding_mode='zeros' or 'replicate'",
                )
            shown = f"2·{pl}" if pl == pr else f"{pl}+{pr}"
            o, f = conv_out(size, ki, si, pl + pr, di, axis, shown)
            check_size(o, f"output {axis}")
            out_sp.append(o)
            formula.append(f)
        out = (p.out_channels, *out_sp)
        per_out = (c_in // p.groups) * math.prod(k)
        params = p.out_channels * per_out + (p.out_channels if p.bias else 0)
        args = {"in_channels": c_in, "out_channels": p.out_channels, "kernel_size": _given(p.kernel_size)}
        args |= _kw(p, "stride", "padding", "dilation", "groups", "bias", "padding_mode")
        return Inferred(
            out=TensorInfo(out),
            params=params,
            macs=numel(out) * per_out,
            formula=formula,
            resolved=resolved,
            torch_args=args,
        )


class Conv1dParams(Params):
    in_channels: Width | None = Field(None, description="Inferred from the incoming shape.")
    out_channels: Width = Field(16, description="Number of filters (output channels).")
    kernel_size: Kernel | tuple[Kernel] = Field(3, description="Filter length.")
    stride: Kernel | tuple[Kernel] = Field(1, description="Step between filter positions.")
    padding: NonNeg | tuple[NonNeg] | PadMode = Field(
        0, description="Zeros added on each side, or 'same' (keep the size) / 'valid' (none)."
    )
    dilation: Kernel | tuple[Kernel] = Field(1, description="Spacing between filter taps.")
    groups: Width = Field(1, description="Split channels into independent groups.")
    bias: bool = Field(True, description="Learn an additive bias per output channel.")
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = Field(
        "zeros", description="How the padding is filled."
    )


@register
class Conv1d(_ConvBase):
    name = "Conv1d"
    help = "1-D convolution over (C, L): signals and sequences."
    params_model = Conv1dParams
    torch_class = "Conv1d"
    dims = 1


Pair = Kernel | tuple[Kernel, Kernel]
PadPair = NonNeg | tuple[NonNeg, NonNeg]


class Conv2dParams(Params):
    in_channels: Width | None = Field(None, description="Inferred from the incoming shape.")
    out_channels: Width = Field(16, description="Number of filters (output channels).")
    kernel_size: Pair = Field(3, description="Filter size: k or [kh, kw].")
    stride: Pair = Field(1, description="Step between filter positions.")
    padding: PadPair | PadMode = Field(
        0, description="Zeros added on each side, or 'same' (keep the size) / 'valid' (none)."
    )
    dilation: Pair = Field(1, description="Spacing between filter taps.")
    groups: Width = Field(1, description="Split channels into independent groups.")
    bias: bool = Field(True, description="Learn an additive bias per output channel.")
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = Field(
        "zeros", description="How the padding is filled."
    )


@register
class Conv2d(_ConvBase):
    name = "Conv2d"
    help = "2-D convolution over (C, H, W): the workhorse of image models."
    params_model = Conv2dParams
    torch_class = "Conv2d"
    dims = 2


class ConvTranspose2dParams(Params):
    in_channels: Width | None = Field(None, description="Inferred from the incoming shape.")
    out_channels: Width = Field(16, description="Number of output channels.")
    kernel_size: Pair = Field(2, description="Filter size.")
    stride: Pair = Field(1, description="Upsampling factor.")
    padding: PadPair = Field(0, description="Removes dilation·(k−1)−padding from each side.")
    output_padding: PadPair = Field(0, description="Extra size on one side, to pick among output sizes.")
    groups: Width = Field(1, description="Split channels into independent groups.")
    bias: bool = Field(True, description="Learn an additive bias per output channel.")
    dilation: Pair = Field(1, description="Spacing between filter taps.")


@register
class ConvTranspose2d(OpSpec):
    name = "ConvTranspose2d"
    category = "Convolution"
    help = "Transposed 2-D convolution: learnable upsampling (decoders, U-Nets)."
    params_model = ConvTranspose2dParams
    torch_class = "ConvTranspose2d"
    positional = ("in_channels", "out_channels")
    input_size_args = ("in_channels",)

    def infer(self, p: ConvTranspose2dParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        check_rank(x, (3,), "channels, H, W")
        c_in = x.shape[0]
        check_declared(p, "in_channels", c_in, source="channels")
        if c_in % p.groups or p.out_channels % p.groups:
            raise NodeProblem(
                f"groups={p.groups} must divide both in_channels={c_in} and out_channels={p.out_channels}",
                field="groups",
            )
        k, s, pad = ntuple(p.kernel_size, 2), ntuple(p.stride, 2), ntuple(p.padding, 2)
        op, d = ntuple(p.output_padding, 2), ntuple(p.dilation, 2)
        out_sp, formula = [], []
        for axis, size, ki, si, pi, oi, di in zip(AXES[2], x.shape[1:], k, s, pad, op, d):
            if oi >= max(si, di):
                raise NodeProblem(
                    f"output_padding={oi} must be smaller than stride ({si}) or dilation ({di})",
                    field="output_padding",
                )
            o, f = conv_transpose_out(size, ki, si, pi, di, oi, axis)
            check_size(o, f"output {axis}")
            out_sp.append(o)
            formula.append(f)
        out = (p.out_channels, *out_sp)
        per_in = (p.out_channels // p.groups) * math.prod(k)
        params = c_in * per_in + (p.out_channels if p.bias else 0)
        args = {"in_channels": c_in, "out_channels": p.out_channels, "kernel_size": _given(p.kernel_size)}
        args |= _kw(p, "stride", "padding", "output_padding", "groups", "bias", "dilation")
        return Inferred(
            out=TensorInfo(out), params=params, macs=numel(x.shape) * per_in, formula=formula, torch_args=args
        )


# =============================================================================================
# Linear and Embedding


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

    def infer(self, p: LinearParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        _need_flat(x, "Linear")
        f_in = x.shape[-1]
        check_declared(p, "in_features", f_in, source="features")
        out = (*x.shape[:-1], p.out_features)
        rows = numel(x.shape[:-1])
        return Inferred(
            out=TensorInfo(out),
            params=f_in * p.out_features + (p.out_features if p.bias else 0),
            macs=rows * f_in * p.out_features,
            formula=[f"features: {f_in} → {p.out_features}"],
            torch_args={"in_features": f_in, "out_features": p.out_features} | _kw(p, "bias"),
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
            | _kw(p, "padding_idx"),
        )


# =============================================================================================
# Normalization


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
            torch_args={"num_features": c} | _kw(p, "eps", "momentum", "affine", "track_running_stats"),
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
            torch_args={"normalized_shape": shape} | _kw(p, "eps", "elementwise_affine", "bias"),
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
            torch_args={"num_groups": p.num_groups, "num_channels": c} | _kw(p, "eps", "affine"),
        )


# =============================================================================================
# Activations


class _Elementwise(OpSpec):
    """Shape-preserving ops without weights; parameters (if any) pass straight to torch."""

    category = "Activation"

    def infer(self, p: Params, inputs: list[TensorInfo]) -> Inferred:
        return Inferred(out=inputs[0], torch_args=_kw(p, *_defaults(type(p))))


class NoParams(Params):
    pass


def _simple(name: str, help_text: str, category: str = "Activation", dtype_in: DType | None = "float32") -> None:
    attrs = {"name": name, "help": help_text, "params_model": NoParams, "torch_class": name, "category": category,
             "dtype_in": dtype_in}
    cls = type(name, (_Elementwise,), attrs)
    register(cls)


_simple("ReLU", "max(0, x): the default nonlinearity.")
_simple("SiLU", "x·sigmoid(x) (swish).")
_simple("Sigmoid", "1 / (1 + e^−x): squashes to (0, 1).")
_simple("Tanh", "Hyperbolic tangent: squashes to (−1, 1).")
_simple("Identity", "Passes its input through unchanged (a placeholder).", category="Shape", dtype_in=None)


class LeakyReLUParams(Params):
    negative_slope: Annotated[float, Field(ge=0, le=1)] = Field(0.01, description="Slope for x < 0.")


@register
class LeakyReLU(_Elementwise):
    name = "LeakyReLU"
    help = "ReLU with a small slope for negative inputs, so no unit dies."
    params_model = LeakyReLUParams
    torch_class = "LeakyReLU"


class ELUParams(Params):
    alpha: Annotated[float, Field(gt=0, le=100)] = Field(1.0, description="Saturation value for x < 0.")


@register
class ELU(_Elementwise):
    name = "ELU"
    help = "Exponential linear unit: smooth for negative inputs."
    params_model = ELUParams
    torch_class = "ELU"


class GELUParams(Params):
    approximate: Literal["none", "tanh"] = Field("none", description="Exact erf form or the tanh approximation.")


@register
class GELU(_Elementwise):
    name = "GELU"
    help = "Gaussian error linear unit (transformers)."
    params_model = GELUParams
    torch_class = "GELU"


class PReLUParams(Params):
    num_parameters: Width = Field(1, description="1 (shared slope) or the number of channels.")
    init: Annotated[float, Field(ge=0, le=1)] = Field(0.25, description="Initial negative slope.")


@register
class PReLU(OpSpec):
    name = "PReLU"
    category = "Activation"
    help = "Leaky ReLU whose negative slope is learned."
    params_model = PReLUParams
    torch_class = "PReLU"

    def infer(self, p: PReLUParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        channels = x.shape[0] if len(x.shape) > 1 else x.shape[-1]
        if p.num_parameters not in (1, channels):
            raise NodeProblem(
                f"num_parameters={p.num_parameters} must be 1 or the {channels} channels of {x.describe()}",
                field="num_parameters",
                suggestion=f"set num_parameters to 1 or {channels}",
            )
        return Inferred(out=x, params=p.num_parameters, torch_args=_kw(p, "num_parameters", "init"))


class SoftmaxParams(Params):
    dim: TorchDim = Field(1, description="Dimension that sums to 1, counted with the batch (1 = features).")


class _SoftmaxBase(_Elementwise):
    params_model = SoftmaxParams

    def infer(self, p: SoftmaxParams, inputs: list[TensorInfo]) -> Inferred:
        batch_dim_to_sample(p.dim, len(inputs[0].shape))
        # dim has no safe torch default (implicit dim is deprecated): always pass it.
        return Inferred(out=inputs[0], torch_args={"dim": p.dim})


@register
class Softmax(_SoftmaxBase):
    name = "Softmax"
    help = "Turns scores into probabilities along dim (use raw logits with cross_entropy)."
    torch_class = "Softmax"


@register
class LogSoftmax(_SoftmaxBase):
    name = "LogSoftmax"
    help = "log(softmax(x)) along dim; pairs with the nll loss."
    torch_class = "LogSoftmax"


# =============================================================================================
# Regularization


class DropoutParams(Params):
    p: Prob = Field(0.5, description="Probability of zeroing an element during training.")


@register
class Dropout(_Elementwise):
    name = "Dropout"
    category = "Regularization"
    help = "Zeroes random elements while training (scaled by 1/(1−p)); a no-op in eval mode."
    params_model = DropoutParams
    torch_class = "Dropout"


@register
class Dropout2d(_Elementwise):
    name = "Dropout2d"
    category = "Regularization"
    help = "Zeroes whole channels while training; a no-op in eval mode."
    params_model = DropoutParams
    torch_class = "Dropout2d"

    def infer(self, p: DropoutParams, inputs: list[TensorInfo]) -> Inferred:
        check_rank(inputs[0], (3,), "channels, H, W")
        return super().infer(p, inputs)


# =============================================================================================
# Pooling


class _PoolBase(OpSpec):
    category = "Pooling"
    positional = ("kernel_size",)
    dims: int
    has_dilation: bool = True

    def infer(self, p: Any, inputs: list[TensorInfo]) -> Inferred:
        n = self.dims
        x = inputs[0]
        check_rank(x, (n + 1,), "channels, " + ", ".join(AXES[n]))
        k = ntuple(p.kernel_size, n)
        s = ntuple(p.stride if p.stride is not None else p.kernel_size, n)
        d = ntuple(p.dilation, n) if self.has_dilation else (1,) * n
        resolved: dict[str, Any] = {}
        if p.padding == "same":
            if any(si != 1 for si in s):
                raise NodeProblem(
                    f"padding='same' keeps the size only with stride 1; received stride={list(s)}",
                    field="padding",
                    suggestion="set stride=1, or use a numeric padding",
                )
            if any((di * (ki - 1)) % 2 for ki, di in zip(k, d)):
                raise NodeProblem(
                    f"padding='same' on a pool needs an odd kernel (symmetric padding); received {list(k)}",
                    field="padding",
                    suggestion="use an odd kernel_size",
                )
            pad = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d))
            if any(pi > ki // 2 for pi, ki in zip(pad, k)):
                raise NodeProblem(
                    f"padding='same' with dilation={list(d)} needs padding {list(pad)}, but torch allows a "
                    f"pool at most half its kernel_size {list(k)}",
                    field="padding",
                    suggestion="use dilation=1 with padding='same', or a numeric padding",
                )
            resolved["padding"] = list(pad)
        elif p.padding == "valid":
            pad = (0,) * n
        else:
            pad = ntuple(p.padding, n)
        out_sp, formula = [], []
        for axis, size, ki, si, pi, di in zip(AXES[n], x.shape[1:], k, s, pad, d):
            if pi > ki // 2:  # torch's rule counts the kernel_size itself, whatever the dilation
                raise NodeProblem(
                    f"padding={pi} is more than half the kernel ({ki}); torch refuses it",
                    field="padding",
                    suggestion=f"use padding ≤ {ki // 2}",
                )
            o, f = pool_out(size, ki, si, pi, di, ceil_mode=p.ceil_mode, axis=axis)
            # with ceil_mode torch keeps a window that overhangs the end, so only an empty output is wrong
            if o < 1 and di * (ki - 1) + 1 > size + 2 * pi:
                raise NodeProblem(
                    f"kernel {ki} is larger than the padded input {size + 2 * pi} along {axis}; "
                    f"received input {x.describe()}",
                    field="kernel_size",
                    suggestion="use a smaller kernel_size or remove this pool",
                )
            check_size(o, f"output {axis}")
            out_sp.append(o)
            formula.append(f)
        args: dict[str, Any] = {"kernel_size": _given(p.kernel_size)}
        args |= _kw(p, "stride")
        if any(pad):
            args["padding"] = pad[0] if len(set(pad)) == 1 else list(pad)
        args |= _kw(p, *self.extra_args)
        return Inferred(
            out=TensorInfo((x.shape[0], *out_sp)), formula=formula, resolved=resolved, torch_args=args
        )

    extra_args: tuple[str, ...] = ("dilation", "ceil_mode")


class MaxPool1dParams(Params):
    kernel_size: Kernel | tuple[Kernel] = Field(2, description="Window length.")
    stride: Kernel | tuple[Kernel] | None = Field(None, description="Step; defaults to kernel_size.")
    padding: NonNeg | tuple[NonNeg] | PadMode = Field(0, description="−inf padding on each side.")
    dilation: Kernel | tuple[Kernel] = Field(1, description="Spacing inside the window.")
    ceil_mode: bool = Field(False, description="Round the output size up instead of down.")


@register
class MaxPool1d(_PoolBase):
    name = "MaxPool1d"
    help = "Maximum over sliding windows of a (C, L) signal."
    params_model = MaxPool1dParams
    torch_class = "MaxPool1d"
    dims = 1


class MaxPool2dParams(Params):
    kernel_size: Pair = Field(2, description="Window size.")
    stride: Pair | None = Field(None, description="Step; defaults to kernel_size.")
    padding: PadPair | PadMode = Field(0, description="−inf padding on each side.")
    dilation: Pair = Field(1, description="Spacing inside the window.")
    ceil_mode: bool = Field(False, description="Round the output size up instead of down.")


@register
class MaxPool2d(_PoolBase):
    name = "MaxPool2d"
    help = "Maximum over sliding windows: halves H and W with the default 2×2."
    params_model = MaxPool2dParams
    torch_class = "MaxPool2d"
    dims = 2


class AvgPool2dParams(Params):
    kernel_size: Pair = Field(2, description="Window size.")
    stride: Pair | None = Field(None, description="Step; defaults to kernel_size.")
    padding: PadPair | PadMode = Field(0, description="Zero padding on each side.")
    ceil_mode: bool = Field(False, description="Round the output size up instead of down.")
    count_include_pad: bool = Field(True, description="Count padded zeros in the average.")


@register
class AvgPool2d(_PoolBase):
    name = "AvgPool2d"
    help = "Average over sliding windows."
    params_model = AvgPool2dParams
    torch_class = "AvgPool2d"
    dims = 2
    has_dilation = False
    extra_args = ("ceil_mode", "count_include_pad")


class AdaptivePoolParams(Params):
    output_size: Width | tuple[Width, Width] = Field(1, description="Target H×W, whatever the input size.")


class _AdaptivePool(OpSpec):
    category = "Pooling"
    params_model = AdaptivePoolParams
    positional = ("output_size",)

    def infer(self, p: AdaptivePoolParams, inputs: list[TensorInfo]) -> Inferred:
        x = inputs[0]
        check_rank(x, (3,), "channels, H, W")
        oh, ow = ntuple(p.output_size, 2)
        return Inferred(
            out=TensorInfo((x.shape[0], oh, ow)),
            formula=[f"H, W: {x.shape[1]}×{x.shape[2]} → {oh}×{ow} (adaptive)"],
            torch_args={"output_size": _given(p.output_size)},
        )


@register
class AdaptiveAvgPool2d(_AdaptivePool):
    name = "AdaptiveAvgPool2d"
    help = "Averages to a fixed H×W (1×1 = global average pooling)."
    torch_class = "AdaptiveAvgPool2d"


@register
class AdaptiveMaxPool2d(_AdaptivePool):
    name = "AdaptiveMaxPool2d"
    help = "Max-pools to a fixed H×W."
    torch_class = "AdaptiveMaxPool2d"


# =============================================================================================
# Shape


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
            torch_args=_kw(p, "start_dim", "end_dim"),
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
            args["size"] = _given(p.size)
        else:
            args["scale_factor"] = scale
        args |= _kw(p, "mode", "align_corners")
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
            torch_args={"padding": _given(p.padding)},
        )


# =============================================================================================
# Merge: functions in forward(), no module


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


MERGE_OPS = ("Add", "Concat")
GRAPH_OPS = ("Input", "Output", "Block")
