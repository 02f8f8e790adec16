"""Shape-keeping layers without weights (or with a learned slope): activations and dropout."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import (
    DType,
    Inferred,
    NodeProblem,
    OpSpec,
    Params,
    TensorInfo,
    TorchFunction,
    batch_dim_to_sample,
    check_rank,
)
from .fields import (
    F,
    NoParams,
    Prob,
    TorchDim,
    Width,
    field_defaults,
    torch_kw,
)
from .registry import register


class _Elementwise(OpSpec):
    """Shape-preserving ops without weights; parameters (if any) pass straight to torch."""

    category = "Activation"

    def infer(self, p: Params, inputs: list[TensorInfo]) -> Inferred:
        return Inferred(out=inputs[0], torch_args=torch_kw(p, *field_defaults(type(p))))


def _simple(name: str, help_text: str, category: str = "Activation", dtype_in: DType | None = "float32",
            functions: tuple[TorchFunction, ...] = ()) -> None:
    attrs = {"name": name, "help": help_text, "params_model": NoParams, "torch_class": name, "category": category,
             "dtype_in": dtype_in, "functions": functions}
    cls = type(name, (_Elementwise,), attrs)
    register(cls)


_simple("ReLU", "max(0, x): the default nonlinearity.", functions=(
    TorchFunction("relu", (F + "relu", "torch.relu", F + "relu_", "torch.relu_", "Tensor.relu", "Tensor.relu_"),
                  ("input", "inplace")),
))
_simple("SiLU", "x·sigmoid(x) (swish).", functions=(TorchFunction("silu", (F + "silu",), ("input", "inplace")),))
_simple("Sigmoid", "1 / (1 + e^−x): squashes to (0, 1).", functions=(
    TorchFunction("sigmoid", ("torch.sigmoid", F + "sigmoid", "Tensor.sigmoid")),
))
_simple("Tanh", "Hyperbolic tangent: squashes to (−1, 1).", functions=(
    TorchFunction("tanh", ("torch.tanh", F + "tanh", "Tensor.tanh")),
))
_simple("ReLU6", "min(max(0, x), 6): ReLU capped at 6 (MobileNet).", functions=(
    TorchFunction("relu6", (F + "relu6",), ("input", "inplace")),
))
_simple("Hardswish", "x·ReLU6(x + 3)/6: a cheap swish (MobileNetV3).", functions=(
    TorchFunction("hardswish", (F + "hardswish",), ("input", "inplace")),
))
_simple("Mish", "x·tanh(softplus(x)): a smooth self-gated activation.", functions=(
    TorchFunction("mish", (F + "mish",), ("input", "inplace")),
))
_simple("Identity", "Passes its input through unchanged (a placeholder).", category="Shape", dtype_in=None)


class LeakyReLUParams(Params):
    negative_slope: Annotated[float, Field(ge=0, le=1)] = Field(0.01, description="Slope for x < 0.")


@register
class LeakyReLU(_Elementwise):
    name = "LeakyReLU"
    help = "ReLU with a small slope for negative inputs, so no unit dies."
    params_model = LeakyReLUParams
    torch_class = "LeakyReLU"
    functions = (TorchFunction("leaky_relu", (F + "leaky_relu",), ("input", "negative_slope", "inplace"),
                               {"negative_slope": 0.01}, ("negative_slope",)),)


class ELUParams(Params):
    alpha: Annotated[float, Field(gt=0, le=100)] = Field(1.0, description="Saturation value for x < 0.")


@register
class ELU(_Elementwise):
    name = "ELU"
    help = "Exponential linear unit: smooth for negative inputs."
    params_model = ELUParams
    torch_class = "ELU"
    functions = (TorchFunction("elu", (F + "elu",), ("input", "alpha", "inplace"), {"alpha": 1.0}, ("alpha",)),)


class GELUParams(Params):
    approximate: Literal["none", "tanh"] = Field("none", description="Exact erf form or the tanh approximation.")


@register
class GELU(_Elementwise):
    name = "GELU"
    help = "Gaussian error linear unit (transformers)."
    params_model = GELUParams
    torch_class = "GELU"
    functions = (TorchFunction("gelu", (F + "gelu",), ("input", "approximate"), {"approximate": "none"},
                               ("approximate",)),)


class SoftplusParams(Params):
    beta: Annotated[float, Field(gt=0, le=100)] = Field(1.0, description="Sharpness: log(1 + e^(βx)) / β.")
    threshold: Annotated[float, Field(gt=0, le=100)] = Field(
        20.0, description="Above β·x > threshold the output is x itself (numerical stability)."
    )


@register
class Softplus(_Elementwise):
    name = "Softplus"
    help = "log(1 + e^(βx)) / β: a smooth ReLU that stays positive."
    params_model = SoftplusParams
    torch_class = "Softplus"
    functions = (TorchFunction("softplus", (F + "softplus",), ("input", "beta", "threshold"),
                               {"beta": 1.0, "threshold": 20.0}, ("beta", "threshold")),)


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
        return Inferred(out=x, params=p.num_parameters, torch_args=torch_kw(p, "num_parameters", "init"))


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
    functions = (TorchFunction("softmax", (F + "softmax", "torch.softmax", "Tensor.softmax"),
                               ("input", "dim", "_stacklevel", "dtype"), {"dim": None, "dtype": None}, ("dim",),
                               must_be={"dtype": None}, required=("dim",)),)


@register
class LogSoftmax(_SoftmaxBase):
    name = "LogSoftmax"
    help = "log(softmax(x)) along dim; pairs with the nll loss."
    torch_class = "LogSoftmax"
    functions = (TorchFunction("log_softmax", (F + "log_softmax", "torch.log_softmax", "Tensor.log_softmax"),
                               ("input", "dim", "_stacklevel", "dtype"), {"dim": None, "dtype": None}, ("dim",),
                               must_be={"dtype": None}, required=("dim",)),)


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
    # F.dropout(x, training=False), as a module's forward writes it in eval, is the identity
    functions = (TorchFunction("dropout", (F + "dropout",), ("input", "p", "training", "inplace"),
                               {"p": 0.5, "training": True}, ("p",), identity_when={"training": False}),)


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


@register
class Dropout1d(_Elementwise):
    name = "Dropout1d"
    category = "Regularization"
    help = "Zeroes whole channels of a (C, L) signal while training; a no-op in eval mode."
    params_model = DropoutParams
    torch_class = "Dropout1d"
    functions = (TorchFunction("dropout1d", (F + "dropout1d",), ("input", "p", "training", "inplace"),
                               {"p": 0.5, "training": True}, ("p",), identity_when={"training": False}),)

    def infer(self, p: DropoutParams, inputs: list[TensorInfo]) -> Inferred:
        check_rank(inputs[0], (2,), "channels, L")
        return super().infer(p, inputs)
