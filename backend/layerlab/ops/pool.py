"""Pooling."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .base import (
    Inferred,
    NodeProblem,
    OpSpec,
    Params,
    TensorInfo,
    TorchFunction,
    check_rank,
    check_size,
    ntuple,
    pool_out,
)
from .fields import (
    AXES,
    F,
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
        args: dict[str, Any] = {"kernel_size": as_given(p.kernel_size)}
        args |= torch_kw(p, "stride")
        if any(pad):
            args["padding"] = pad[0] if len(set(pad)) == 1 else list(pad)
        args |= torch_kw(p, *self.extra_args)
        return Inferred(
            out=TensorInfo((x.shape[0], *out_sp)), formula=formula, resolved=resolved, torch_args=args
        )

    extra_args: tuple[str, ...] = ("dilation", "ceil_mode")

    def from_torch(self, module: Any) -> dict[str, Any]:
        out = super().from_torch(module)
        if out.get("stride") == out.get("kernel_size"):  # torch stores the default stride as kernel_size
            out["stride"] = None
        return out


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
    functions = (TorchFunction(
        "max_pool2d", (F + "max_pool2d",),
        ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
        {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False},
        ("kernel_size", "stride", "padding", "dilation", "ceil_mode"), must_be={"return_indices": False},
    ),)
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
    functions = (TorchFunction(
        "avg_pool2d", (F + "avg_pool2d",),
        ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
        {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None},
        ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"), must_be={"divisor_override": None},
    ),)
    dims = 2
    has_dilation = False
    extra_args = ("ceil_mode", "count_include_pad")


class AvgPool1dParams(Params):
    kernel_size: Kernel | tuple[Kernel] = Field(2, description="Window length.")
    stride: Kernel | tuple[Kernel] | None = Field(None, description="Step; defaults to kernel_size.")
    padding: NonNeg | tuple[NonNeg] | PadMode = Field(0, description="Zero padding on each side.")
    ceil_mode: bool = Field(False, description="Round the output size up instead of down.")
    count_include_pad: bool = Field(True, description="Count padded zeros in the average.")


@register
class AvgPool1d(_PoolBase):
    name = "AvgPool1d"
    help = "Average over sliding windows of a (C, L) signal."
    params_model = AvgPool1dParams
    torch_class = "AvgPool1d"
    functions = (TorchFunction(
        "avg_pool1d", (F + "avg_pool1d", "torch.avg_pool1d"),
        ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
        {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True},
        ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    ),)
    dims = 1
    has_dilation = False
    extra_args = ("ceil_mode", "count_include_pad")


class AdaptivePoolParams(Params):
    output_size: Width | tuple[Width, Width] = Field(1, description="Target H×W, whatever the input size.")


class _AdaptivePool(OpSpec):
    category = "Pooling"
    params_model = AdaptivePoolParams
    positional = ("output_size",)
    dims = 2

    def infer(self, p: Any, inputs: list[TensorInfo]) -> Inferred:
        n = self.dims
        x = inputs[0]
        check_rank(x, (n + 1,), "channels, " + ", ".join(AXES[n]))
        out_sp = ntuple(p.output_size, n)
        return Inferred(
            out=TensorInfo((x.shape[0], *out_sp)),
            formula=[f"{', '.join(AXES[n])}: {'×'.join(map(str, x.shape[1:]))} → {'×'.join(map(str, out_sp))} "
                     "(adaptive)"],
            torch_args={"output_size": as_given(p.output_size)},
        )


@register
class AdaptiveAvgPool2d(_AdaptivePool):
    name = "AdaptiveAvgPool2d"
    help = "Averages to a fixed H×W (1×1 = global average pooling)."
    torch_class = "AdaptiveAvgPool2d"
    functions = (TorchFunction("adaptive_avg_pool2d", (F + "adaptive_avg_pool2d",), ("input", "output_size"),
                               params=("output_size",)),)


@register
class AdaptiveMaxPool2d(_AdaptivePool):
    name = "AdaptiveMaxPool2d"
    help = "Max-pools to a fixed H×W."
    torch_class = "AdaptiveMaxPool2d"
    functions = (TorchFunction("adaptive_max_pool2d", (F + "adaptive_max_pool2d",),
                               ("input", "output_size", "return_indices"), {"return_indices": False},
                               ("output_size",), must_be={"return_indices": False}),)


class AdaptivePool1dParams(Params):
    output_size: Width | tuple[Width] = Field(1, description="Target length, whatever the input length.")


@register
class AdaptiveAvgPool1d(_AdaptivePool):
    name = "AdaptiveAvgPool1d"
    help = "Averages a (C, L) signal to a fixed length (1 = global average over the sequence)."
    params_model = AdaptivePool1dParams
    torch_class = "AdaptiveAvgPool1d"
    functions = (TorchFunction("adaptive_avg_pool1d", (F + "adaptive_avg_pool1d", "torch.adaptive_avg_pool1d"),
                               ("input", "output_size"), params=("output_size",)),)
    dims = 1
