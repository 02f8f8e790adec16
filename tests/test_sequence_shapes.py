"""Property tests for the sequence, attention and reshaping ops: random sizes and settings, the
report's shape and parameter count against torch's own modules and functions (written here by hand,
not through LayerLab's builder). Where torch refuses, the report must name the node."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import layerlab
from helpers import graph, n_params, node, sample_input, single

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REFUSED = (RuntimeError, ValueError, AssertionError, IndexError, TypeError)


def judge(g: dict[str, Any], shape: list[int], ref: Callable[[], nn.Module | Callable[[torch.Tensor], Any]]) -> None:
    """The report agrees with torch: same output shape and parameters, or an error on the node."""
    report = layerlab.infer(g)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = ref()
            with torch.no_grad():
                y = module(sample_input(shape))
    except REFUSED:
        assert not report.valid
        assert "layer" in {e.node for e in report.errors}, report.errors
        return
    assert report.valid, report.errors
    assert report.output_shape == list(y.shape[1:])
    expected = n_params(module) if isinstance(module, nn.Module) else 0
    assert report.totals.params == expected


class Outputs(nn.Module):
    def __init__(self, rnn: nn.Module, last: bool) -> None:
        super().__init__()
        self.rnn, self.last = rnn, last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out[:, -1] if self.last else out


seq_shapes = st.tuples(st.integers(1, 6), st.integers(1, 8))


@SETTINGS
@given(shape=seq_shapes, kind=st.sampled_from(["RNN", "LSTM", "GRU"]), hidden=st.integers(1, 6),
       layers=st.integers(1, 3), bidirectional=st.booleans(), bias=st.booleans(), last=st.booleans())
def test_recurrent_matches_torch(shape: tuple[int, int], kind: str, hidden: int, layers: int, bidirectional: bool,
                                 bias: bool, last: bool) -> None:
    params = {"hidden_size": hidden, "num_layers": layers, "bidirectional": bidirectional, "bias": bias,
              "output": "last" if last else "sequence"}
    ref = getattr(nn, kind)(shape[1], hidden, num_layers=layers, bidirectional=bidirectional, bias=bias,
                            batch_first=True)
    judge(single(kind, params, list(shape)), list(shape), lambda: Outputs(ref, last))
    report = layerlab.infer(single(kind, params, list(shape)))
    weights = sum(p.numel() for name, p in ref.named_parameters() if name.startswith("weight"))
    assert report.totals.macs == shape[0] * weights  # every step multiplies by every weight once


class SelfAttention(nn.Module):
    def __init__(self, attn: nn.MultiheadAttention) -> None:
        super().__init__()
        self.attn = attn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x)[0]


@SETTINGS
@given(steps=st.integers(1, 5), e=st.integers(1, 12), heads=st.integers(1, 4), bias=st.booleans())
def test_self_attention_matches_torch(steps: int, e: int, heads: int, bias: bool) -> None:
    g = single("MultiheadAttention", {"num_heads": heads, "bias": bias}, [steps, e])
    judge(g, [steps, e], lambda: SelfAttention(nn.MultiheadAttention(e, heads, bias=bias, batch_first=True)))


@SETTINGS
@given(steps=st.integers(1, 5), e=st.integers(1, 12), heads=st.integers(1, 4), ff=st.integers(1, 16),
       layers=st.integers(1, 3), norm_first=st.booleans(), bias=st.booleans(), norm=st.booleans())
def test_encoder_matches_torch(steps: int, e: int, heads: int, ff: int, layers: int, norm_first: bool, bias: bool,
                               norm: bool) -> None:
    kw = {"dim_feedforward": ff, "norm_first": norm_first, "bias": bias}

    def ref() -> nn.Module:
        layer = nn.TransformerEncoderLayer(e, heads, batch_first=True, **kw)
        return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(e, bias=bias) if norm else None)

    g = single("TransformerEncoder", {"nhead": heads, "num_layers": layers, "norm": norm} | kw, [steps, e])
    judge(g, [steps, e], ref)
    one = single("TransformerEncoderLayer", {"nhead": heads} | kw, [steps, e])
    judge(one, [steps, e], lambda: nn.TransformerEncoderLayer(e, heads, batch_first=True, **kw))


any_shape = st.lists(st.integers(1, 5), min_size=1, max_size=3)


@SETTINGS
@given(shape=any_shape, data=st.data())
def test_permute_matches_torch(shape: list[int], data: st.DataObject) -> None:
    rest = data.draw(st.permutations(list(range(1, len(shape) + 1))))
    dims = [0, *(d - len(shape) - 1 if data.draw(st.booleans()) else d for d in rest)]
    if data.draw(st.booleans()):
        dims = data.draw(st.lists(st.integers(-3, 3), min_size=1, max_size=4))  # anything, maybe invalid
    g = single("Permute", {"dims": dims}, shape)
    rank = len(shape) + 1
    a_permutation = all(-rank <= d < rank for d in dims) and sorted(d % rank for d in dims) == list(range(rank))
    if a_permutation and dims[0] % rank != 0:  # torch would move the batch away from the front; LayerLab refuses
        assert [e.field for e in layerlab.infer(g).errors] == ["dims"]
        return
    judge(g, shape, lambda: lambda x: x.permute(*dims))


@SETTINGS
@given(shape=any_shape, target=st.lists(st.sampled_from([-1, 1, 2, 3, 4, 6, 12]), min_size=1, max_size=3))
def test_reshape_matches_torch(shape: list[int], target: list[int]) -> None:
    judge(single("Reshape", {"shape": target}, shape), shape, lambda: lambda x: x.reshape(x.size(0), *target))


@SETTINGS
@given(shape=any_shape, dims=st.lists(st.integers(-4, 3), min_size=1, max_size=2), keepdim=st.booleans())
def test_mean_matches_torch(shape: list[int], dims: list[int], keepdim: bool) -> None:
    g = single("Mean", {"dim": dims, "keepdim": keepdim}, shape)
    report = layerlab.infer(g)
    try:
        y = sample_input(shape).mean(dims, keepdim=keepdim)
        refused = 0 in [d % (len(shape) + 1) for d in dims] or y.dim() < 2  # LayerLab keeps the batch
    except REFUSED:
        refused = True
    if refused:
        assert "layer" in {e.node for e in report.errors}
    else:
        assert report.output_shape == list(y.shape[1:])


@SETTINGS
@given(a=any_shape, data=st.data())
def test_multiply_broadcasts_as_torch(a: list[int], data: st.DataObject) -> None:
    b = [data.draw(st.sampled_from([d, 1, d + 1])) for d in a]
    # the second input is the first reshaped to b (where the sizes allow it): x * x.reshape(B, *b)
    g = graph([node("inp", "Input", shape=a), node("gate", "Reshape", shape=b), node("layer", "Multiply"),
               node("out", "Output")], [("inp", "gate"), ("inp", "layer"), ("gate", "layer"), ("layer", "out")])
    report = layerlab.infer(g)
    x = sample_input(a)
    try:
        y = x * x.reshape(x.size(0), *b)
    except REFUSED:
        assert not report.valid
        return
    assert report.valid, report.errors
    assert report.output_shape == list(y.shape[1:])


@SETTINGS
@given(steps=st.integers(1, 6), d=st.integers(1, 6), positions=st.integers(1, 8))
def test_positional_embedding_fits_the_sequence(steps: int, d: int, positions: int) -> None:
    class Positions(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(positions, d))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.weight[: x.size(1)]

    g = single("PositionalEmbedding", {"num_positions": positions}, [steps, d])
    if steps > positions:  # torch would broadcast the too-short table silently; LayerLab says so
        assert [e.field for e in layerlab.infer(g).errors] == ["num_positions"]
        return
    judge(g, [steps, d], Positions)


class PatchViT(nn.Module):
    """A small ViT as torchvision writes one (patches by a strided conv, a class token, learned
    positions, a batch-first encoder), its parts named as the graph below names its nodes."""

    def __init__(self) -> None:
        super().__init__()
        self.patches = nn.Conv2d(3, 16, kernel_size=4, stride=4)
        self.cls = nn.Module()
        self.cls.weight = nn.Parameter(torch.randn(1, 1, 16))
        self.pos = nn.Module()
        self.pos.weight = nn.Parameter(torch.randn(5, 16))
        layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16), enable_nested_tensor=False)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patches(x).flatten(2).transpose(1, 2)  # (B, 4, 16): one vector per 4×4 patch
        x = torch.cat([self.cls.weight.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 5, 16)
        x = self.encoder(x + self.pos.weight)
        return self.head(x.mean(dim=1))


def test_a_vision_transformer_built_from_the_catalog() -> None:
    from helpers import chain

    g = chain([3, 8, 8], ("Conv2d", {"out_channels": 16, "kernel_size": 4, "stride": 4}),
              ("Flatten", {"start_dim": 2}), ("Permute", {"dims": [0, 2, 1]}), ("ClassToken", {}),
              ("PositionalEmbedding", {}),
              ("TransformerEncoder", {"nhead": 4, "dim_feedforward": 32, "num_layers": 2, "norm_first": True,
                                      "norm": True}),
              ("Mean", {"dim": 1}), ("Linear", {"out_features": 10}))
    names = {"l0": "patches", "l3": "cls", "l4": "pos", "l5": "encoder", "l7": "head"}
    report = layerlab.infer(g)
    assert report.valid, report.errors
    assert report.node("l3").output_shape == [5, 16]
    ref = PatchViT().eval()
    assert report.totals.params == n_params(ref)
    model = layerlab.build(g).eval()
    renamed = {}
    for key, value in ref.state_dict().items():
        head, _, rest = key.partition(".")
        node_id = next(i for i, name in names.items() if name == head)
        renamed[f"{node_id}.{rest}"] = value
    model.load_state_dict(renamed, strict=True)
    x = sample_input([3, 8, 8])
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x))


def test_a_parameter_form_position_table_covers_the_sequence_exactly() -> None:
    report = layerlab.infer(single("PositionalEmbedding", {"num_positions": 10, "form": "parameter"}, [6, 4]))
    error = next(e for e in report.errors if e.node == "layer")
    assert error.field == "num_positions" and "num_positions=10 and the sequence has 6 steps" in error.message
    assert layerlab.infer(single("PositionalEmbedding", {"num_positions": 6, "form": "parameter"}, [6, 4])).valid


def test_select_out_of_range_names_the_index() -> None:
    report = layerlab.infer(single("Select", {"dim": 1, "index": 5}, [5, 3]))
    error = next(e for e in report.errors if e.node == "layer")
    assert error.field == "index" and "index=5 is out of range for dim 1 of size 5" in error.message
    assert "from -5 to 4" in (error.suggestion or "")
    with torch.no_grad():  # torch agrees: index 5 of 5 fails, -5 is the first
        try:
            torch.zeros(2, 5, 3)[:, 5]
        except IndexError:
            pass
        else:  # pragma: no cover
            raise AssertionError("torch took index 5 of 5")
    assert layerlab.infer(single("Select", {"dim": 1, "index": -5}, [5, 3])).valid
    refused = layerlab.infer(single("Select", {"dim": 1, "index": 0}, [5]))
    assert not refused.valid and "leaves no per-sample value" in refused.errors[0].message
