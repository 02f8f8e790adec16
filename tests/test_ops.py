"""Table-driven shape tests: every catalog op, checked against torch itself.

Each case is a small graph plus the torch module a person would write by hand for the same
params. The report's output shape and parameter count must equal what that module produces and
holds; the module LayerLab builds must accept the hand-written module's weights (strict) and give
the same output.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import layerlab
from helpers import chain, graph, n_params, node, sample_input, single


class Fn(nn.Module):
    """A parameter-free reference built from a function (for the merge ops)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


# torch warns that an even 'same' kernel copies the input; that is the case under test.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")


@dataclass(frozen=True)
class Case:
    id: str
    graph: dict[str, Any]
    ref: Callable[[], nn.Module]  # the torch module written by hand for the same params
    node: str = "layer"
    dtype: str = "float32"
    high: int = 2  # exclusive upper bound of int64 ids
    resolved: dict[str, Any] = field(default_factory=dict)


def op_case(case_id: str, op: str, params: dict[str, Any], shape: list[int], ref: Callable[[], nn.Module],
            **kw: Any) -> Case:
    return Case(case_id, single(op, params, shape, dtype=kw.get("dtype", "float32")), ref, **kw)


def merge_graph(op: str, shape: list[int], **params: Any) -> dict[str, Any]:
    """Input → two branches (ReLU, Tanh) → op → Output."""
    nodes = [node("inp", "Input", shape=shape), node("a", "ReLU"), node("b", "Tanh"),
             node("layer", op, **params), node("out", "Output")]
    return graph(nodes, [("inp", "a"), ("inp", "b"), ("a", "layer"), ("b", "layer"), ("layer", "out")])


def gate_graph(shape: list[int]) -> dict[str, Any]:
    """Input → (AdaptiveAvgPool2d → Sigmoid) as a per-channel gate, multiplied onto the input."""
    nodes = [node("inp", "Input", shape=shape), node("pool", "AdaptiveAvgPool2d"), node("gate", "Sigmoid"),
             node("layer", "Multiply"), node("out", "Output")]
    return graph(nodes, [("inp", "pool"), ("pool", "gate"), ("inp", "layer"), ("gate", "layer"), ("layer", "out")])


class SEGate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(F.adaptive_avg_pool2d(x, 1))  # (B, C, H, W) × (B, C, 1, 1)


def outputs_of(cls: type[nn.Module], *args: Any, last: bool = False, **kw: Any) -> nn.Module:
    """A recurrent layer as a person subclasses it to chain in nn.Sequential: out, _ = rnn(x)."""

    class Ref(cls):  # type: ignore[misc, valid-type]
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = super().forward(x)
            return out[:, -1] if last else out

    return Ref(*args, batch_first=True, **kw)


class SelfAttentionRef(nn.MultiheadAttention):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x, x, x)[0]


class PositionsRef(nn.Module):
    def __init__(self, positions: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(positions, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight[: x.size(1)]


class ClassTokenRef(nn.Module):
    """ViT's class token, as torchvision writes it: expand, then cat in front. Held as ``weight``
    (what the ClassToken module holds) or, as a raw parameter of the model, under the node's name."""

    def __init__(self, dim: int, name: str = "weight") -> None:
        super().__init__()
        self.name = name
        self.register_parameter(name, nn.Parameter(torch.randn(1, 1, dim)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        token = getattr(self, self.name)
        return torch.cat([token.expand(x.shape[0], -1, -1), x], dim=1)


class RawPositions(nn.Module):
    """A position table held as a raw parameter (1, L, D) and added whole: x + self.layer."""

    def __init__(self, steps: int, dim: int) -> None:
        super().__init__()
        self.layer = nn.Parameter(torch.randn(1, steps, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer


def encoder_layer(d: int, heads: int, **kw: Any) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(d, heads, batch_first=True, **kw)


def block_graph(shape: list[int], **params: Any) -> dict[str, Any]:
    nodes = [node("inp", "Input", shape=shape), node("layer", "Block", **params),
             node("c", "Conv2d", parent="layer", out_channels=shape[0], kernel_size=3, padding=1),
             node("r", "ReLU", parent="layer"), node("out", "Output")]
    return graph(nodes, [("inp", "layer"), ("c", "r"), ("layer", "out")])


def seq(**mods: nn.Module) -> nn.Sequential:
    return nn.Sequential(OrderedDict(mods))


CASES = [
    # --- convolution --------------------------------------------------------------------------
    op_case("conv1d", "Conv1d", {"out_channels": 8}, [3, 20], lambda: nn.Conv1d(3, 8, 3)),
    op_case("conv1d-stride-pad", "Conv1d", {"out_channels": 4, "kernel_size": 5, "stride": 2, "padding": 2},
            [2, 17], lambda: nn.Conv1d(2, 4, 5, stride=2, padding=2)),
    op_case("conv1d-same-even", "Conv1d", {"out_channels": 4, "kernel_size": 4, "padding": "same"}, [2, 11],
            lambda: nn.Conv1d(2, 4, 4, padding="same"), resolved={"padding": [[1, 2]]}),
    op_case("conv1d-same-dilated", "Conv1d",
            {"out_channels": 4, "kernel_size": 4, "dilation": 3, "padding": "same"}, [2, 12],
            lambda: nn.Conv1d(2, 4, 4, dilation=3, padding="same"), resolved={"padding": [[4, 5]]}),
    op_case("conv1d-valid-groups", "Conv1d", {"out_channels": 6, "groups": 3, "padding": "valid"}, [3, 9],
            lambda: nn.Conv1d(3, 6, 3, groups=3, padding="valid")),
    op_case("conv1d-circular", "Conv1d", {"out_channels": 2, "padding": 1, "padding_mode": "circular"},
            [2, 8], lambda: nn.Conv1d(2, 2, 3, padding=1, padding_mode="circular")),
    op_case("conv2d", "Conv2d", {"out_channels": 8}, [3, 12, 12], lambda: nn.Conv2d(3, 8, 3)),
    op_case("conv2d-same-odd", "Conv2d", {"out_channels": 8, "kernel_size": 5, "padding": "same"}, [3, 9, 7],
            lambda: nn.Conv2d(3, 8, 5, padding="same"), resolved={"padding": [[2, 2], [2, 2]]}),
    op_case("conv2d-same-even", "Conv2d", {"out_channels": 4, "kernel_size": 4, "padding": "same"}, [3, 9, 8],
            lambda: nn.Conv2d(3, 4, 4, padding="same"), resolved={"padding": [[1, 2], [1, 2]]}),
    op_case("conv2d-same-rect-dilated", "Conv2d",
            {"out_channels": 4, "kernel_size": [2, 3], "dilation": [3, 2], "padding": "same"}, [2, 10, 9],
            lambda: nn.Conv2d(2, 4, (2, 3), dilation=(3, 2), padding="same"),
            resolved={"padding": [[1, 2], [2, 2]]}),
    op_case("conv2d-valid", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": "valid"}, [3, 6, 6],
            lambda: nn.Conv2d(3, 4, 3, padding="valid")),
    op_case("conv2d-stride", "Conv2d", {"out_channels": 8, "kernel_size": 3, "stride": 2, "padding": 1},
            [3, 15, 16], lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1)),
    op_case("conv2d-rect", "Conv2d",
            {"out_channels": 4, "kernel_size": [3, 5], "stride": [2, 1], "padding": [0, 2], "dilation": [1, 2]},
            [3, 11, 13], lambda: nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding=(0, 2), dilation=(1, 2))),
    op_case("conv2d-depthwise", "Conv2d", {"out_channels": 8, "groups": 4, "bias": False}, [4, 7, 7],
            lambda: nn.Conv2d(4, 8, 3, groups=4, bias=False)),
    op_case("conv2d-reflect", "Conv2d", {"out_channels": 2, "padding": 1, "padding_mode": "reflect"},
            [2, 5, 5], lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")),
    op_case("conv2d-declared-in", "Conv2d", {"in_channels": 3, "out_channels": 2}, [3, 5, 5],
            lambda: nn.Conv2d(3, 2, 3)),
    op_case("convT", "ConvTranspose2d", {"out_channels": 4, "kernel_size": 2, "stride": 2}, [3, 5, 6],
            lambda: nn.ConvTranspose2d(3, 4, 2, stride=2)),
    op_case("convT-output-padding", "ConvTranspose2d",
            {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1}, [3, 5, 5],
            lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)),
    op_case("convT-groups", "ConvTranspose2d", {"out_channels": 6, "kernel_size": 3, "groups": 3, "bias": False},
            [3, 4, 4], lambda: nn.ConvTranspose2d(3, 6, 3, groups=3, bias=False)),
    op_case("convT-dilated-op", "ConvTranspose2d",
            {"out_channels": 2, "kernel_size": 3, "dilation": 3, "output_padding": [2, 1]}, [2, 4, 5],
            lambda: nn.ConvTranspose2d(2, 2, 3, dilation=3, output_padding=(2, 1))),
    # --- linear -------------------------------------------------------------------------------
    op_case("linear", "Linear", {"out_features": 10}, [64], lambda: nn.Linear(64, 10)),
    op_case("linear-seq", "Linear", {"out_features": 3, "bias": False}, [5, 7], lambda: nn.Linear(7, 3, bias=False)),
    op_case("embedding", "Embedding", {"num_embeddings": 50, "embedding_dim": 8}, [7],
            lambda: nn.Embedding(50, 8), dtype="int64", high=50),
    op_case("embedding-padding-idx", "Embedding", {"num_embeddings": 20, "embedding_dim": 4, "padding_idx": 0},
            [3, 5], lambda: nn.Embedding(20, 4, padding_idx=0), dtype="int64", high=20),
    # --- recurrent ----------------------------------------------------------------------------
    op_case("rnn", "RNN", {"hidden_size": 6}, [5, 3], lambda: outputs_of(nn.RNN, 3, 6)),
    op_case("rnn-relu-last", "RNN", {"hidden_size": 4, "nonlinearity": "relu", "output": "last", "bias": False},
            [7, 2], lambda: outputs_of(nn.RNN, 2, 4, nonlinearity="relu", bias=False, last=True)),
    op_case("lstm", "LSTM", {"hidden_size": 8}, [6, 4], lambda: outputs_of(nn.LSTM, 4, 8)),
    op_case("lstm-deep-bi-last", "LSTM",
            {"hidden_size": 5, "num_layers": 3, "bidirectional": True, "dropout": 0.2, "output": "last"}, [4, 3],
            lambda: outputs_of(nn.LSTM, 3, 5, num_layers=3, bidirectional=True, dropout=0.2, last=True)),
    op_case("gru", "GRU", {"hidden_size": 7, "num_layers": 2}, [5, 3], lambda: outputs_of(nn.GRU, 3, 7, num_layers=2)),
    op_case("gru-bi", "GRU", {"hidden_size": 3, "bidirectional": True}, [9, 2],
            lambda: outputs_of(nn.GRU, 2, 3, bidirectional=True)),
    # --- attention ----------------------------------------------------------------------------
    op_case("mha", "MultiheadAttention", {"num_heads": 2}, [5, 8], lambda: SelfAttentionRef(8, 2, batch_first=True)),
    op_case("mha-no-bias", "MultiheadAttention", {"num_heads": 4, "bias": False, "dropout": 0.1}, [3, 12],
            lambda: SelfAttentionRef(12, 4, bias=False, dropout=0.1, batch_first=True)),
    op_case("encoder-layer", "TransformerEncoderLayer", {"nhead": 2, "dim_feedforward": 16}, [5, 8],
            lambda: encoder_layer(8, 2, dim_feedforward=16)),
    op_case("encoder-layer-prenorm-gelu", "TransformerEncoderLayer",
            {"nhead": 3, "dim_feedforward": 10, "activation": "gelu", "norm_first": True, "bias": False,
             "dropout": 0.0}, [4, 6],
            lambda: encoder_layer(6, 3, dim_feedforward=10, activation="gelu", norm_first=True, bias=False,
                                  dropout=0.0)),
    op_case("encoder", "TransformerEncoder", {"nhead": 2, "dim_feedforward": 12, "num_layers": 3}, [5, 8],
            lambda: nn.TransformerEncoder(encoder_layer(8, 2, dim_feedforward=12), 3)),
    op_case("encoder-norm", "TransformerEncoder",
            {"nhead": 2, "dim_feedforward": 12, "num_layers": 2, "norm": True, "norm_first": True}, [5, 8],
            lambda: nn.TransformerEncoder(encoder_layer(8, 2, dim_feedforward=12, norm_first=True), 2,
                                          norm=nn.LayerNorm(8))),
    op_case("positions", "PositionalEmbedding", {"num_positions": 10}, [6, 4], lambda: PositionsRef(10, 4)),
    op_case("class-token", "ClassToken", {}, [6, 4], lambda: ClassTokenRef(4)),
    op_case("positions-inferred", "PositionalEmbedding", {}, [6, 4], lambda: PositionsRef(6, 4)),
    op_case("class-token-parameter", "ClassToken", {"form": "parameter"}, [6, 4], lambda: ClassTokenRef(4, "layer")),
    op_case("positions-parameter", "PositionalEmbedding", {"form": "parameter"}, [6, 4], lambda: RawPositions(6, 4)),
    # --- normalization ------------------------------------------------------------------------
    op_case("bn1d-features", "BatchNorm1d", {}, [16], lambda: nn.BatchNorm1d(16)),
    op_case("bn1d-seq", "BatchNorm1d", {"affine": False}, [6, 10], lambda: nn.BatchNorm1d(6, affine=False)),
    op_case("bn2d", "BatchNorm2d", {"momentum": 0.2}, [8, 5, 5], lambda: nn.BatchNorm2d(8, momentum=0.2)),
    op_case("bn2d-no-stats", "BatchNorm2d", {"track_running_stats": False}, [4, 3, 3],
            lambda: nn.BatchNorm2d(4, track_running_stats=False)),
    op_case("instnorm", "InstanceNorm2d", {}, [3, 6, 6], lambda: nn.InstanceNorm2d(3)),
    op_case("instnorm-affine", "InstanceNorm2d", {"affine": True}, [3, 6, 6],
            lambda: nn.InstanceNorm2d(3, affine=True)),
    op_case("layernorm", "LayerNorm", {}, [10], lambda: nn.LayerNorm(10)),
    op_case("layernorm-2d", "LayerNorm", {"normalized_shape": [4, 6], "bias": False}, [4, 6],
            lambda: nn.LayerNorm([4, 6], bias=False)),
    op_case("layernorm-trailing", "LayerNorm", {}, [3, 5, 7], lambda: nn.LayerNorm(7)),
    op_case("layernorm-no-affine", "LayerNorm", {"elementwise_affine": False}, [9],
            lambda: nn.LayerNorm(9, elementwise_affine=False)),
    op_case("groupnorm", "GroupNorm", {"num_groups": 4}, [8, 5, 5], lambda: nn.GroupNorm(4, 8)),
    op_case("groupnorm-no-affine", "GroupNorm", {"num_groups": 2, "affine": False}, [6, 7],
            lambda: nn.GroupNorm(2, 6, affine=False)),
    # --- activations --------------------------------------------------------------------------
    op_case("relu", "ReLU", {}, [3, 4], nn.ReLU),
    op_case("silu", "SiLU", {}, [5], nn.SiLU),
    op_case("sigmoid", "Sigmoid", {}, [2, 3, 3], nn.Sigmoid),
    op_case("tanh", "Tanh", {}, [4], nn.Tanh),
    op_case("identity", "Identity", {}, [4, 2], nn.Identity),
    op_case("identity-ids", "Identity", {}, [6], nn.Identity, dtype="int64", high=9),  # ids pass through
    op_case("leaky", "LeakyReLU", {"negative_slope": 0.2}, [6], lambda: nn.LeakyReLU(0.2)),
    op_case("elu", "ELU", {"alpha": 0.5}, [6], lambda: nn.ELU(alpha=0.5)),
    op_case("gelu", "GELU", {"approximate": "tanh"}, [6], lambda: nn.GELU(approximate="tanh")),
    op_case("prelu", "PReLU", {}, [8, 4, 4], nn.PReLU),
    op_case("prelu-channels", "PReLU", {"num_parameters": 8, "init": 0.1}, [8, 4, 4],
            lambda: nn.PReLU(8, init=0.1)),
    op_case("prelu-features", "PReLU", {"num_parameters": 10}, [10], lambda: nn.PReLU(10)),
    op_case("softmax", "Softmax", {}, [10], lambda: nn.Softmax(dim=1)),
    op_case("softmax-last", "Softmax", {"dim": -1}, [3, 4], lambda: nn.Softmax(dim=-1)),
    op_case("logsoftmax", "LogSoftmax", {"dim": 2}, [3, 4], lambda: nn.LogSoftmax(dim=2)),
    op_case("relu6", "ReLU6", {}, [3, 5], nn.ReLU6),
    op_case("hardswish", "Hardswish", {}, [4, 3, 3], nn.Hardswish),
    op_case("mish", "Mish", {}, [7], nn.Mish),
    op_case("softplus", "Softplus", {"beta": 2.0, "threshold": 5.0}, [6], lambda: nn.Softplus(2.0, 5.0)),
    op_case("softplus-default", "Softplus", {}, [2, 6], nn.Softplus),
    # --- regularization -----------------------------------------------------------------------
    op_case("dropout", "Dropout", {"p": 0.3}, [12], lambda: nn.Dropout(0.3)),
    op_case("dropout2d", "Dropout2d", {}, [3, 4, 4], nn.Dropout2d),
    op_case("dropout1d", "Dropout1d", {"p": 0.2}, [3, 9], lambda: nn.Dropout1d(0.2)),
    # --- pooling ------------------------------------------------------------------------------
    op_case("maxpool1d", "MaxPool1d", {"kernel_size": 3, "stride": 2}, [4, 11], lambda: nn.MaxPool1d(3, 2)),
    op_case("maxpool1d-ceil", "MaxPool1d", {"kernel_size": 2, "ceil_mode": True}, [2, 7],
            lambda: nn.MaxPool1d(2, ceil_mode=True)),
    op_case("maxpool2d", "MaxPool2d", {}, [3, 8, 9], lambda: nn.MaxPool2d(2)),
    op_case("maxpool2d-ceil", "MaxPool2d", {"kernel_size": 3, "stride": 2, "ceil_mode": True}, [3, 8, 8],
            lambda: nn.MaxPool2d(3, 2, ceil_mode=True)),
    # ceil_mode's last window would start inside the padding: torch drops it (5 → 3, not 4)
    op_case("maxpool2d-ceil-last-window", "MaxPool2d",
            {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, [3, 5, 5],
            lambda: nn.MaxPool2d(2, 2, padding=1, ceil_mode=True)),
    op_case("maxpool2d-dilated", "MaxPool2d", {"kernel_size": 3, "stride": 1, "dilation": 2, "padding": 1},
            [2, 9, 9], lambda: nn.MaxPool2d(3, 1, padding=1, dilation=2)),
    op_case("maxpool2d-same", "MaxPool2d", {"kernel_size": 3, "stride": 1, "padding": "same"}, [2, 6, 7],
            lambda: nn.MaxPool2d(3, 1, padding=1), resolved={"padding": [1, 1]}),
    op_case("maxpool2d-rect", "MaxPool2d", {"kernel_size": [2, 3], "stride": [2, 1], "padding": [1, 0]},
            [2, 7, 8], lambda: nn.MaxPool2d((2, 3), (2, 1), padding=(1, 0))),
    op_case("avgpool2d", "AvgPool2d", {"kernel_size": 3, "padding": 1, "count_include_pad": False}, [3, 10, 10],
            lambda: nn.AvgPool2d(3, padding=1, count_include_pad=False)),
    op_case("avgpool2d-ceil-last-window", "AvgPool2d",
            {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, [2, 5, 7],
            lambda: nn.AvgPool2d(2, 2, padding=1, ceil_mode=True)),
    op_case("avgpool1d", "AvgPool1d", {"kernel_size": 3, "stride": 2, "padding": 1}, [4, 11],
            lambda: nn.AvgPool1d(3, 2, padding=1)),
    op_case("avgpool1d-ceil", "AvgPool1d", {"kernel_size": 2, "ceil_mode": True, "count_include_pad": False},
            [2, 7], lambda: nn.AvgPool1d(2, ceil_mode=True, count_include_pad=False)),
    op_case("adaptive-avg-1d", "AdaptiveAvgPool1d", {"output_size": 3}, [4, 10], lambda: nn.AdaptiveAvgPool1d(3)),
    op_case("adaptive-avg-1d-global", "AdaptiveAvgPool1d", {}, [5, 7], lambda: nn.AdaptiveAvgPool1d(1)),
    op_case("mean-hw", "Mean", {"dim": [2, 3]}, [4, 5, 6], lambda: Fn(lambda x: x.mean([2, 3]))),
    op_case("mean-seq-keepdim", "Mean", {"dim": 1, "keepdim": True}, [5, 3],
            lambda: Fn(lambda x: x.mean(1, keepdim=True))),
    op_case("mean-last", "Mean", {}, [2, 3, 4], lambda: Fn(lambda x: x.mean(-1))),
    op_case("select-first-step", "Select", {}, [5, 3], lambda: Fn(lambda x: x[:, 0])),
    op_case("select-last-of-dim-3", "Select", {"dim": -1, "index": -1}, [4, 5, 6], lambda: Fn(lambda x: x[..., -1])),
    op_case("select-channel", "Select", {"dim": 1, "index": 2}, [4, 5, 6], lambda: Fn(lambda x: x[:, 2])),
    op_case("select-ids", "Select", {"dim": 2, "index": 1}, [5, 3], lambda: Fn(lambda x: x[:, :, 1]), dtype="int64",
            high=9),
    op_case("adaptive-avg", "AdaptiveAvgPool2d", {}, [8, 5, 5], lambda: nn.AdaptiveAvgPool2d(1)),
    op_case("adaptive-max", "AdaptiveMaxPool2d", {"output_size": [2, 3]}, [4, 7, 9],
            lambda: nn.AdaptiveMaxPool2d((2, 3))),
    # --- shape --------------------------------------------------------------------------------
    op_case("flatten", "Flatten", {}, [3, 4, 5], nn.Flatten),
    op_case("flatten-partial", "Flatten", {"start_dim": 2}, [3, 4, 5], lambda: nn.Flatten(2)),
    op_case("flatten-end", "Flatten", {"start_dim": 1, "end_dim": -2}, [3, 4, 5], lambda: nn.Flatten(1, -2)),
    op_case("unflatten", "Unflatten", {}, [64], lambda: nn.Unflatten(1, (1, 8, 8))),
    op_case("unflatten-last", "Unflatten", {"dim": -1, "unflattened_size": [2, 3]}, [4, 6],
            lambda: nn.Unflatten(-1, (2, 3))),
    op_case("upsample-scale", "Upsample", {}, [3, 4, 5], lambda: nn.Upsample(scale_factor=2.0)),
    op_case("upsample-fractional", "Upsample", {"scale_factor": 1.5}, [3, 5, 7],
            lambda: nn.Upsample(scale_factor=1.5)),
    op_case("upsample-size", "Upsample", {"size": [10, 12], "mode": "bilinear", "align_corners": True},
            [3, 5, 6], lambda: nn.Upsample(size=(10, 12), mode="bilinear", align_corners=True)),
    op_case("upsample-size-int", "Upsample", {"size": 9}, [2, 4, 5], lambda: nn.Upsample(size=9)),
    op_case("upsample-linear-1d", "Upsample", {"scale_factor": 3, "mode": "linear"}, [2, 5],
            lambda: nn.Upsample(scale_factor=3.0, mode="linear")),
    op_case("upsample-bicubic", "Upsample", {"scale_factor": 0.5, "mode": "bicubic"}, [1, 9, 8],
            lambda: nn.Upsample(scale_factor=0.5, mode="bicubic")),
    op_case("upsample-nearest-exact", "Upsample", {"scale_factor": 1.7, "mode": "nearest-exact"}, [1, 6, 3],
            lambda: nn.Upsample(scale_factor=1.7, mode="nearest-exact")),
    op_case("permute", "Permute", {}, [5, 3], lambda: Fn(lambda x: x.permute(0, 2, 1))),
    op_case("permute-3d", "Permute", {"dims": [0, 2, 3, 1]}, [2, 4, 5], lambda: Fn(lambda x: x.permute(0, 2, 3, 1))),
    op_case("permute-negative", "Permute", {"dims": [0, -1, 1, 2]}, [2, 4, 5],
            lambda: Fn(lambda x: x.permute(0, 3, 1, 2))),
    op_case("reshape", "Reshape", {"shape": [4, 16]}, [64], lambda: Fn(lambda x: x.reshape(x.size(0), 4, 16))),
    op_case("reshape-infer", "Reshape", {"shape": [2, -1, 3]}, [4, 6], lambda: Fn(lambda x: x.reshape(-1, 2, 4, 3))),
    op_case("reshape-ids", "Reshape", {"shape": [3, 2]}, [6], lambda: Fn(lambda x: x.reshape(-1, 3, 2)),
            dtype="int64", high=9),
    op_case("pixel-shuffle", "PixelShuffle", {}, [8, 3, 4], lambda: nn.PixelShuffle(2)),
    op_case("pixel-shuffle-3", "PixelShuffle", {"upscale_factor": 3}, [18, 2, 2], lambda: nn.PixelShuffle(3)),
    op_case("zeropad", "ZeroPad2d", {}, [3, 4, 4], lambda: nn.ZeroPad2d(1)),
    op_case("zeropad-asym", "ZeroPad2d", {"padding": [1, 2, 0, 3]}, [3, 4, 5], lambda: nn.ZeroPad2d((1, 2, 0, 3)),
            resolved={"padding": [1, 2, 0, 3]}),
    # --- merge and structure ------------------------------------------------------------------
    Case("add", merge_graph("Add", [3, 4]), lambda: Fn(lambda x: torch.relu(x) + torch.tanh(x))),
    Case("multiply", merge_graph("Multiply", [3, 4]), lambda: Fn(lambda x: torch.relu(x) * torch.tanh(x))),
    Case("multiply-gate", gate_graph([4, 5, 5]),
         SEGate),
    Case("concat", merge_graph("Concat", [3, 4]), lambda: Fn(lambda x: torch.cat([torch.relu(x), torch.tanh(x)], 1))),
    Case("concat-last", merge_graph("Concat", [3, 4], dim=-1),
         lambda: Fn(lambda x: torch.cat([torch.relu(x), torch.tanh(x)], -1))),
    Case("block", block_graph([3, 6, 6]),
         lambda: seq(c=nn.Conv2d(3, 3, 3, padding=1), r=nn.ReLU())),
    Case("block-chain", chain([4], ("Linear", {"out_features": 6}), ("ReLU", {}), ("Linear", {"out_features": 2})),
         lambda: seq(l0=nn.Linear(4, 6), l1=nn.ReLU(), l2=nn.Linear(6, 2)), node="l2"),
]


def test_every_catalog_op_is_in_the_table() -> None:
    covered = {n["op"] for case in CASES for n in case.graph["nodes"]}
    ops = {entry["op"] for entry in layerlab.catalog()["ops"]}
    assert ops - covered == set(), "add table cases for these ops"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_op_matches_torch(case: Case) -> None:
    report = layerlab.infer(case.graph)
    assert report.valid, report.errors
    in_shape = next(n for n in case.graph["nodes"] if n["op"] == "Input")["params"]["shape"]
    x = sample_input(in_shape, dtype=case.dtype, high=case.high)

    torch.manual_seed(0)
    ref = case.ref().eval()
    expected = ref(x)
    expected_params = n_params(ref)

    # the report agrees with the hand-written torch module
    assert report.node(case.node).output_shape == list(expected.shape[1:])
    assert report.output_shape == list(expected.shape[1:])
    assert report.totals.params == expected_params
    if case.node == "layer":
        assert report.node("layer").params == expected_params
    for key, value in case.resolved.items():
        assert report.node(case.node).resolved[key] == value

    # the built module is that module: same weights, same output
    model = layerlab.build(case.graph).eval()
    assert n_params(model) == expected_params
    prefix = "layer." if case.node == "layer" and isinstance(model, nn.Sequential) else ""
    model.load_state_dict({prefix + k: v for k, v in ref.state_dict().items()}, strict=True)
    got = model(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize(("kernel", "dilation", "size"), [(2, 1, 7), (4, 1, 8), (3, 2, 9), (2, 3, 6), (5, 1, 5)])
def test_same_padding_resolves_to_torchs_split(kernel: int, dilation: int, size: int) -> None:
    """torch pads an even total asymmetrically, the extra on the right: the resolved padding,
    applied by hand with F.pad, must give exactly torch's padding='same' result."""
    g = single("Conv1d", {"out_channels": 2, "kernel_size": kernel, "dilation": dilation, "padding": "same"},
               [1, size])
    report = layerlab.infer(g)
    assert report.valid, report.errors
    [[left, right]] = report.node("layer").resolved["padding"]
    torch.manual_seed(0)
    conv = nn.Conv1d(1, 2, kernel, dilation=dilation, padding="same")
    x = sample_input([1, size])
    by_hand = F.conv1d(F.pad(x, (left, right)), conv.weight, conv.bias, dilation=dilation)
    torch.testing.assert_close(by_hand, conv(x))
    assert report.node("layer").output_shape == [2, size]


@pytest.mark.parametrize("op", ["Conv1d", "Conv2d"])
def test_same_padding_with_stride_is_a_clear_error(op: str) -> None:
    shape = [3, 10] if op == "Conv1d" else [3, 10, 10]
    g = single(op, {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": "same"}, shape)
    with pytest.raises(ValueError):  # torch refuses it too
        getattr(nn, op)(3, 4, 3, stride=2, padding="same")
    report = layerlab.infer(g)
    assert not report.valid
    [err] = report.errors
    assert err.node == "layer"
    assert err.field == "padding"
    assert "stride 1" in err.message
    assert "padding=1" in err.suggestion


def test_ceil_mode_last_window_rule_bites() -> None:
    """Plain ceil arithmetic says 4; torch drops the window that would start in the padding."""
    g = single("MaxPool1d", {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, [1, 5])
    report = layerlab.infer(g)
    naive = -(-(5 + 2 * 1 - 2) // 2) + 1
    actual = nn.MaxPool1d(2, 2, padding=1, ceil_mode=True)(torch.zeros(1, 1, 5)).shape[-1]
    assert naive != actual
    assert report.node("layer").output_shape == [1, actual]
    assert "padding" in report.node("layer").formula[0]


def test_formulas_substitute_numbers() -> None:
    report = layerlab.infer(single("Conv2d", {"out_channels": 8, "kernel_size": 3, "stride": 2}, [3, 9, 9]))
    assert report.node("layer").formula == [
        "H: (9 + 2·0 − 1·(3−1) − 1) / 2 + 1 = 4",
        "W: (9 + 2·0 − 1·(3−1) − 1) / 2 + 1 = 4",
    ]


def test_macs_for_conv_and_linear() -> None:
    conv = layerlab.infer(single("Conv2d", {"out_channels": 8, "kernel_size": 3}, [4, 6, 6])).node("layer")
    assert conv.macs == 8 * 4 * 4 * (4 * 3 * 3)  # output elements × multiplies per output
    lin = layerlab.infer(single("Linear", {"out_features": 5}, [7])).node("layer")
    assert lin.macs == 7 * 5


def test_upsample_size_without_scale_factor() -> None:
    """size alone must work: the default scale_factor gives way when size is given."""
    report = layerlab.infer(single("Upsample", {"size": [10, 12]}, [3, 5, 6]))
    assert report.valid, report.errors
    assert report.output_shape == [3, 10, 12]


def test_upsample_size_and_explicit_scale_is_an_error() -> None:
    report = layerlab.infer(single("Upsample", {"size": 8, "scale_factor": 2.0}, [3, 4, 4]))
    assert [e.node for e in report.errors] == ["layer"]
    assert "exactly one" in report.errors[0].message


# ---------------------------------------------------------------------------------------------
# The catalog as data


def test_catalog_is_json_and_complete() -> None:
    import json

    data = json.loads(json.dumps(layerlab.catalog()))
    assert data["format"] == "layerlab.catalog/1"
    names = [e["op"] for e in data["ops"]]
    assert len(names) == len(set(names))
    for entry in data["ops"]:
        assert entry["category"] in data["categories"]
        assert entry["help"].strip()
        props = entry["params"].get("properties", {})
        required = set(entry["params"].get("required", []))
        for name, schema in props.items():
            assert schema.get("description"), f"{entry['op']}.{name} has no description"
            assert "default" in schema or name in required, f"{entry['op']}.{name} has no default"
        assert set(entry["inferred"]) <= set(props)


@pytest.mark.parametrize("entry", layerlab.catalog()["ops"], ids=lambda e: e["op"])
def test_catalog_defaults_are_valid_and_torch_classes_exist(entry: dict[str, Any]) -> None:
    from layerlab.ops import get_op

    spec = get_op(entry["op"])
    defaults = {k: v["default"] for k, v in entry["params"].get("properties", {}).items() if "default" in v}
    if not entry["params"].get("required"):
        spec.params_model.model_validate(defaults)  # the form's defaults are accepted as they are
    if entry["torch_class"] is not None and spec.custom_module:  # one of LayerLab's small modules
        from layerlab import modules

        assert not entry["torch_class"].startswith("nn.")
        assert issubclass(getattr(modules, entry["torch_class"]), nn.Module)
    elif entry["torch_class"] is not None:
        assert entry["torch_class"].startswith("nn.")
        assert isinstance(getattr(nn, entry["torch_class"][3:]), type)
