"""Sequence layers: recurrent (RNN, LSTM, GRU), attention (self-attention, transformer encoder
layers and stacks) and a learned positional embedding.

A sequence is ``(L, features)`` per sample, batch first as ``(B, L, features)``: every layer here
builds with ``batch_first=True``. torch's recurrent layers and ``nn.MultiheadAttention`` return a
tuple, so LayerLab builds the small subclasses in layerlab/modules.py that return only the output
(the generated code shows them); they keep torch's parameter names, so state_dicts load as they are.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from .base import (
    Inferred,
    NodeProblem,
    OpSpec,
    ParameterForm,
    Params,
    Shape,
    TensorInfo,
    check_declared,
    fmt_shape,
)
from .fields import Prob, Width, torch_kw
from .registry import register

Layers = Annotated[int, Field(ge=1, le=16, strict=True)]
Heads = Annotated[int, Field(ge=1, le=256, strict=True)]
Eps = Annotated[float, Field(gt=0, le=1)]


def _sequence(x: TensorInfo, op: str, features: str) -> tuple[int, int]:
    if len(x.shape) != 2:
        raise NodeProblem(
            f"{op} takes a sequence (L, {features}) per sample, batch first; received {x.describe()}",
            suggestion="feed it token vectors, e.g. from an Embedding, or Permute a (C, L) signal to (L, C)",
        )
    return x.shape[0], x.shape[1]


def _batch_first(module: Any, inner: Any) -> None:
    if not getattr(inner, "batch_first", True):
        raise ValueError(f"batch_first=False: LayerLab's sequences are batch first (B, L, E); build the "
                         f"{type(module).__name__} with batch_first=True")


# =============================================================================================
# Recurrent


class RecurrentParams(Params):
    input_size: Width | None = Field(None, description="Inferred: the features per step.")
    hidden_size: Width = Field(64, description="Features of the hidden state (per direction).")
    num_layers: Layers = Field(1, description="Stacked recurrent layers, each feeding the next.")
    bias: bool = Field(True, description="Learn input and hidden biases.")
    dropout: Prob = Field(0.0, description="Dropout between stacked layers while training (not after the last).")
    bidirectional: bool = Field(False, description="Also run backwards; the outputs of both directions are joined.")
    output: Literal["sequence", "last"] = Field(
        "sequence",
        description="What flows on: every step's output (L, D·H), or the last step's (D·H) as in out[:, -1].",
    )


class RNNParams(RecurrentParams):
    nonlinearity: Literal["tanh", "relu"] = Field("tanh", description="The activation of the hidden state.")


class _Recurrent(OpSpec):
    """nn.RNN / LSTM / GRU, batch first, returning only the outputs (layerlab.modules.Outputs)."""

    category = "Recurrent"
    positional = ("input_size", "hidden_size")
    input_size_args = ("input_size",)
    custom_module = True
    tuple_output = True
    gates: int  # weight blocks per layer: 1 (RNN), 3 (GRU), 4 (LSTM)

    def infer(self, p: Any, inputs: list[TensorInfo]) -> Inferred:
        steps, features = _sequence(inputs[0], self.name, "features")
        check_declared(p, "input_size", features, source="features")
        dirs = 2 if p.bidirectional else 1
        g, h = self.gates, p.hidden_size
        params = macs = 0
        for layer in range(p.num_layers):
            width = features if layer == 0 else dirs * h
            per_step = g * h * (width + h)  # W_ih·x + W_hh·h for every gate
            params += dirs * (per_step + (2 * g * h if p.bias else 0))
            macs += dirs * steps * per_step
        out = (dirs * h,) if p.output == "last" else (steps, dirs * h)
        names = [k for k in ("num_layers", "nonlinearity", "bias", "dropout", "bidirectional") if hasattr(p, k)]
        args = {"input_size": features, "hidden_size": h} | torch_kw(p, *names) | {"batch_first": True}
        if p.output == "last":
            args["last_step"] = True
        where = "last step" if p.output == "last" else f"{steps} steps"
        return Inferred(
            out=TensorInfo(out),
            params=params,
            macs=macs,
            formula=[f"{steps} steps × {features} → {where} × {dirs}·{h} = {fmt_shape(out)}"],
            torch_args=args,
        )

    def init_targets(self, torch_args: dict[str, Any]) -> tuple[list[str], list[str]]:
        suffixes = ["", "_reverse"] if torch_args.get("bidirectional") else [""]
        cells = [f"l{k}{s}" for k in range(torch_args.get("num_layers", 1)) for s in suffixes]
        weights = [f"weight_{w}_{c}" for c in cells for w in ("ih", "hh")]
        biases = [f"bias_{w}_{c}" for c in cells for w in ("ih", "hh")] if torch_args.get("bias", True) else []
        return weights, biases

    def from_torch(self, module: Any) -> dict[str, Any]:
        _batch_first(module, module)
        out = {k: getattr(module, k) for k in self.params_model.model_fields if hasattr(module, k)}
        out["output"] = "last" if getattr(module, "last_step", False) else "sequence"
        return out


@register
class RNN(_Recurrent):
    name = "RNN"
    help = "Elman recurrent layer over a sequence (L, features): h_t = tanh(W·x_t + U·h_{t−1} + b)."
    params_model = RNNParams
    torch_class = "RNN"
    import_classes = ("RNN",)
    gates = 1


@register
class LSTM(_Recurrent):
    name = "LSTM"
    help = "Long short-term memory over a sequence (L, features): gated, keeps long-range context."
    params_model = RecurrentParams
    torch_class = "LSTM"
    import_classes = ("LSTM",)
    gates = 4


@register
class GRU(_Recurrent):
    name = "GRU"
    help = "Gated recurrent unit over a sequence (L, features): an LSTM with fewer gates."
    params_model = RecurrentParams
    torch_class = "GRU"
    import_classes = ("GRU",)
    gates = 3


# =============================================================================================
# Attention


def _attention_costs(steps: int, e: int, bias: bool) -> tuple[int, int]:
    """Self-attention's parameters and MACs: the q, k, v and output projections, the scores
    q·kᵀ (L×L per head, summed over the head dims: L·L·E) and the weighted sum of the values."""
    params = 4 * e * e + (4 * e if bias else 0)
    macs = steps * 4 * e * e + 2 * steps * steps * e
    return params, macs


def _check_heads(e: int, heads: int, field_name: str) -> None:
    if e % heads:
        raise NodeProblem(f"{field_name}={heads} must divide the embedding size {e}", field=field_name,
                          suggestion=f"pick a divisor of {e}")


class MultiheadAttentionParams(Params):
    embed_dim: Width | None = Field(None, description="Inferred: the features per step.")
    num_heads: Heads = Field(4, description="Parallel attention heads; must divide embed_dim.")
    dropout: Prob = Field(0.0, description="Dropout on the attention weights while training.")
    bias: bool = Field(True, description="Learn biases in the input and output projections.")


@register
class MultiheadAttention(OpSpec):
    name = "MultiheadAttention"
    category = "Attention"
    help = "Self-attention over a sequence (L, E): every step attends to every step; queries, keys, values = x."
    params_model = MultiheadAttentionParams
    torch_class = "SelfAttention"
    custom_module = True
    import_classes = ("MultiheadAttention",)
    tuple_output = True
    call_repeats = 3
    call_ignored = ("need_weights", "average_attn_weights")
    positional = ("embed_dim", "num_heads")
    input_size_args = ("embed_dim",)
    init_weight = True

    def infer(self, p: MultiheadAttentionParams, inputs: list[TensorInfo]) -> Inferred:
        steps, e = _sequence(inputs[0], self.name, "E")
        check_declared(p, "embed_dim", e, source="features")
        _check_heads(e, p.num_heads, "num_heads")
        params, macs = _attention_costs(steps, e, p.bias)
        return Inferred(
            out=inputs[0],
            params=params,
            macs=macs,
            formula=[f"{p.num_heads} heads of {e // p.num_heads} over {steps} steps, shape kept {inputs[0].describe()}"],
            torch_args={"embed_dim": e, "num_heads": p.num_heads} | torch_kw(p, "dropout", "bias")
            | {"batch_first": True},
        )

    def init_targets(self, torch_args: dict[str, Any]) -> tuple[list[str], list[str]]:
        bias = torch_args.get("bias", True)
        return ["in_proj_weight", "out_proj.weight"], (["in_proj_bias", "out_proj.bias"] if bias else [])

    def from_torch(self, module: Any) -> dict[str, Any]:
        _batch_first(module, module)
        if not module._qkv_same_embed_dim:
            raise ValueError("kdim/vdim differ from embed_dim: LayerLab's attention is self-attention")
        return {"embed_dim": module.embed_dim, "num_heads": module.num_heads, "dropout": module.dropout,
                "bias": module.in_proj_bias is not None}


class EncoderLayerParams(Params):
    d_model: Width | None = Field(None, description="Inferred: the features per step.")
    nhead: Heads = Field(4, description="Attention heads; must divide d_model.")
    dim_feedforward: Width = Field(2048, description="Width of the feed-forward block's hidden layer.")
    dropout: Prob = Field(0.1, description="Dropout in the attention and feed-forward blocks while training.")
    activation: Literal["relu", "gelu"] = Field("relu", description="The feed-forward block's activation.")
    layer_norm_eps: Eps = Field(1e-5, description="LayerNorm's epsilon.")
    norm_first: bool = Field(False, description="LayerNorm before each block (pre-norm) instead of after.")
    bias: bool = Field(True, description="Learn biases in the linear layers and LayerNorms.")


_LAYER_ARGS = ("dim_feedforward", "dropout", "activation", "layer_norm_eps", "norm_first", "bias")


def _encoder_costs(p: Any, steps: int, e: int) -> tuple[int, int]:
    """One encoder layer: self-attention, the feed-forward block (two linear layers) and two LayerNorms."""
    ff = p.dim_feedforward
    attn_params, attn_macs = _attention_costs(steps, e, p.bias)
    ff_params = 2 * e * ff + ((ff + e) if p.bias else 0)
    norm_params = 2 * (2 * e if p.bias else e)
    return attn_params + ff_params + norm_params, attn_macs + 2 * steps * e * ff + 2 * steps * e


def _layer_settings(layer: Any) -> dict[str, Any]:
    """An nn.TransformerEncoderLayer's settings as the op's params (torch keeps them in its parts)."""
    act = layer.activation
    name = getattr(act, "__name__", type(act).__name__).lower()
    if name not in ("relu", "gelu") or getattr(act, "approximate", "none") != "none":
        raise ValueError(f"activation {act!r}: LayerLab's encoder layer takes 'relu' or 'gelu'")
    return {
        "d_model": layer.self_attn.embed_dim,
        "nhead": layer.self_attn.num_heads,
        "dim_feedforward": layer.linear1.out_features,
        "dropout": layer.dropout.p,
        "activation": name,
        "layer_norm_eps": layer.norm1.eps,
        "norm_first": layer.norm_first,
        "bias": layer.linear1.bias is not None,
    }


@register
class TransformerEncoderLayer(OpSpec):
    name = "TransformerEncoderLayer"
    category = "Attention"
    help = "One transformer encoder layer on (L, E): self-attention, then a feed-forward block, each residual."
    params_model = EncoderLayerParams
    torch_class = "TransformerEncoderLayer"
    call_ignored = ("is_causal",)
    positional = ("d_model", "nhead")
    input_size_args = ("d_model",)

    def infer(self, p: EncoderLayerParams, inputs: list[TensorInfo]) -> Inferred:
        steps, e = _sequence(inputs[0], self.name, "E")
        check_declared(p, "d_model", e, source="features")
        _check_heads(e, p.nhead, "nhead")
        params, macs = _encoder_costs(p, steps, e)
        return Inferred(
            out=inputs[0],
            params=params,
            macs=macs,
            formula=[f"{p.nhead} heads, feed-forward {e} → {p.dim_feedforward} → {e}, shape kept "
                     f"{inputs[0].describe()}"],
            torch_args={"d_model": e, "nhead": p.nhead} | torch_kw(p, *_LAYER_ARGS) | {"batch_first": True},
        )

    def from_torch(self, module: Any) -> dict[str, Any]:
        _batch_first(module, module.self_attn)
        return _layer_settings(module)


class EncoderParams(EncoderLayerParams):
    num_layers: Layers = Field(2, description="Copies of the encoder layer, each with its own weights.")
    norm: bool = Field(False, description="A final LayerNorm after the last layer (as pre-norm stacks use).")


@register
class TransformerEncoder(OpSpec):
    name = "TransformerEncoder"
    category = "Attention"
    help = "A stack of num_layers transformer encoder layers on (L, E), as nn.TransformerEncoder builds it."
    params_model = EncoderParams
    torch_class = "TransformerEncoder"
    custom_module = True
    import_classes = ("TransformerEncoder",)
    call_ignored = ("is_causal",)
    positional = ("d_model", "nhead", "num_layers")
    input_size_args = ("d_model",)

    def infer(self, p: EncoderParams, inputs: list[TensorInfo]) -> Inferred:
        steps, e = _sequence(inputs[0], self.name, "E")
        check_declared(p, "d_model", e, source="features")
        _check_heads(e, p.nhead, "nhead")
        params, macs = _encoder_costs(p, steps, e)
        norm_params = (2 * e if p.bias else e) if p.norm else 0
        return Inferred(
            out=inputs[0],
            params=p.num_layers * params + norm_params,
            macs=p.num_layers * macs + (steps * e if p.norm else 0),
            formula=[f"{p.num_layers} × encoder layer ({p.nhead} heads, feed-forward {p.dim_feedforward}), shape "
                     f"kept {inputs[0].describe()}"],
            torch_args={"d_model": e, "nhead": p.nhead, "num_layers": p.num_layers}
            | torch_kw(p, "norm", *_LAYER_ARGS),
        )

    def from_torch(self, module: Any) -> dict[str, Any]:
        first = module.layers[0]
        _batch_first(module, first.self_attn)
        settings = _layer_settings(first)
        for i, layer in enumerate(module.layers):
            if _layer_settings(layer) != settings:
                raise ValueError(f"layer {i} differs from layer 0; LayerLab's encoder repeats one layer")
        norm = module.norm
        if norm is not None and (type(norm).__name__ != "LayerNorm" or norm.eps != first.norm1.eps):
            raise ValueError(f"norm={norm!r}: LayerLab's encoder ends with an optional LayerNorm of the layers' eps")
        return settings | {"num_layers": module.num_layers, "norm": norm is not None}


Form = Literal["module", "parameter"]
FORM = ("module: a submodule holding weight (state_dict key NAME.weight); parameter: a raw nn.Parameter "
        "of the enclosing module, as ViT reference code writes self.{example} (state_dict key NAME)")


class PositionalEmbeddingParams(Params):
    num_positions: Width | None = Field(
        None, description="Longest sequence it holds a vector for; inferred as the incoming length."
    )
    embedding_dim: Width | None = Field(None, description="Inferred: the features per step.")
    form: Form = Field("module", description=FORM.format(example="pos_embedding") + ", shape (1, L, D), x + it")


@register
class PositionalEmbedding(OpSpec):
    name = "PositionalEmbedding"
    category = "Attention"
    help = "Adds a learned vector per position to a sequence (L, D): x + weight[:L] (BERT, ViT)."
    params_model = PositionalEmbeddingParams
    torch_class = "PositionalEmbedding"
    custom_module = True
    positional = ("num_positions", "embedding_dim")
    input_size_args = ("embedding_dim",)
    parameter_form = ParameterForm(code="{x} + {p}", function="add_positions", init="normal")

    def parameter_shape(self, torch_args: dict[str, Any]) -> Shape:
        return (1, torch_args["num_positions"], torch_args["embedding_dim"])

    def infer(self, p: PositionalEmbeddingParams, inputs: list[TensorInfo]) -> Inferred:
        steps, d = _sequence(inputs[0], self.name, "D")
        check_declared(p, "embedding_dim", d, source="features")
        positions = p.num_positions if p.num_positions is not None else steps
        if steps > positions:
            raise NodeProblem(f"the sequence has {steps} steps but num_positions={positions}", field="num_positions",
                              suggestion=f"set num_positions to at least {steps}")
        if p.form == "parameter" and positions != steps:
            raise NodeProblem(f"form='parameter' adds the whole table, one vector per step, but num_positions="
                              f"{positions} and the sequence has {steps} steps", field="num_positions",
                              suggestion=f"set num_positions to {steps}, or use form='module'")
        return Inferred(
            out=inputs[0],
            params=positions * d,
            macs=steps * d,
            formula=[f"+ learned ({positions}, {d})[:{steps}], shape kept {inputs[0].describe()}"],
            torch_args={"num_positions": positions, "embedding_dim": d},
        )


class ClassTokenParams(Params):
    embedding_dim: Width | None = Field(None, description="Inferred: the features per step.")
    form: Form = Field("module", description=FORM.format(example="cls_token") + ", shape (1, 1, D)")


@register
class ClassToken(OpSpec):
    name = "ClassToken"
    category = "Attention"
    help = "Prepends one learned token to a sequence: (L, D) → (L + 1, D), ViT's class token."
    params_model = ClassTokenParams
    torch_class = "ClassToken"
    custom_module = True
    positional = ("embedding_dim",)
    input_size_args = ("embedding_dim",)
    parameter_form = ParameterForm(code="torch.cat([{p}.expand({x}.size(0), -1, -1), {x}], dim=1)",
                                   function="prepend_token")

    def parameter_shape(self, torch_args: dict[str, Any]) -> Shape:
        return (1, 1, torch_args["embedding_dim"])

    def infer(self, p: ClassTokenParams, inputs: list[TensorInfo]) -> Inferred:
        steps, d = _sequence(inputs[0], self.name, "D")
        check_declared(p, "embedding_dim", d, source="features")
        out = (steps + 1, d)
        return Inferred(out=TensorInfo(out), params=d, formula=[f"L: 1 + {steps} = {steps + 1}"],
                        torch_args={"embedding_dim": d})
