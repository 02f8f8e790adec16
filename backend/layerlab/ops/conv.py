"""Convolutions: Conv1d, Conv2d, ConvTranspose2d."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field

from .base import (
    Inferred,
    NodeProblem,
    OpSpec,
    Params,
    TensorInfo,
    check_declared,
    check_rank,
    check_size,
    conv_out,
    conv_transpose_out,
    ntuple,
    numel,
    same_padding,
)
from .fields import (
    AXES,
    Kernel,
    NonNeg,
    PadMode,
    PadPair,
    Pair,
    Width,
    as_given,
    torch_kw,
)
from .registry import register


class _ConvBase(OpSpec):
    category = "Convolution"
    positional = ("in_channels", "out_channels")
    input_size_args = ("in_channels",)
    init_weight = True
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
                    f"padding='same' needs stride 1 (torch refuses it otherwise); received stride={as_given(p.stride)}",
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
        args = {"in_channels": c_in, "out_channels": p.out_channels, "kernel_size": as_given(p.kernel_size)}
        args |= torch_kw(p, "stride", "padding", "dilation", "groups", "bias", "padding_mode")
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
    init_weight = True

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
        args = {"in_channels": c_in, "out_channels": p.out_channels, "kernel_size": as_given(p.kernel_size)}
        args |= torch_kw(p, "stride", "padding", "output_padding", "groups", "bias", "dilation")
        return Inferred(
            out=TensorInfo(out), params=params, macs=numel(x.shape) * per_in, formula=formula, torch_args=args
        )
