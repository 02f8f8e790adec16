"""The small modules LayerLab builds where torch.nn has no class for a step, or has one that does
not chain in an ``nn.Sequential`` (an LSTM returns its states too).

Each is what a person would write by hand, and the code generator prints each class used from this
file's own source, so the exported file defines exactly what was built. Needs only PyTorch.
"""

from __future__ import annotations

import torch
from torch import nn


class Residual(nn.Module):
    """A residual block: out = body(x) + shortcut(x)."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class Permute(nn.Module):
    """x.permute(*dims): reorders the dimensions (dims counted with the batch, which stays first)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


class Reshape(nn.Module):
    """x.reshape(B, *shape): a new per-sample shape holding the same elements."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.size(0), *self.shape)


class Mean(nn.Module):
    """x.mean(dim): the average over one or more dims (counted with the batch)."""

    def __init__(self, dim: int | tuple[int, ...], keepdim: bool = False) -> None:
        super().__init__()
        self.dim = tuple(dim) if isinstance(dim, list) else dim
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(self.dim, keepdim=self.keepdim)


class Select(nn.Module):
    """x.select(dim, index), as x[:, 0]: one position along a dim (counted with the batch), which goes."""

    def __init__(self, dim: int, index: int) -> None:
        super().__init__()
        self.dim = dim
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.select(self.dim, self.index)


class Outputs:
    """For a recurrent layer: forward returns only the outputs, every step (B, L, D·H) or the last
    one (B, D·H), and drops the final states, so the layer chains in an nn.Sequential."""

    def __init__(self, *args, last_step: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.last_step = last_step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = super().forward(x)  # batch_first: (B, L, D·H); the final states are dropped
        return out[:, -1] if self.last_step else out


class RNN(Outputs, nn.RNN):
    """nn.RNN returning only its outputs (see Outputs)."""


class LSTM(Outputs, nn.LSTM):
    """nn.LSTM returning only its outputs (see Outputs)."""


class GRU(Outputs, nn.GRU):
    """nn.GRU returning only its outputs (see Outputs)."""


class SelfAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention as self-attention: queries, keys and values are all x; returns only
    the attended values (B, L, E), not the attention weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = super().forward(x, x, x, need_weights=False)
        return out


class TransformerEncoder(nn.TransformerEncoder):
    """nn.TransformerEncoder of num_layers copies of one nn.TransformerEncoderLayer (batch first),
    with a final LayerNorm when norm is set."""

    def __init__(self, d_model: int, nhead: int, num_layers: int, norm: bool = False, **layer_kwargs) -> None:
        layer = nn.TransformerEncoderLayer(d_model, nhead, batch_first=True, **layer_kwargs)
        final = nn.LayerNorm(d_model, eps=layer.norm1.eps, bias=layer.norm1.bias is not None) if norm else None
        super().__init__(layer, num_layers, norm=final)


class PositionalEmbedding(nn.Module):
    """A learned vector per position, added to a sequence (B, L, D): x + weight[:L]."""

    def __init__(self, num_positions: int, embedding_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_positions, embedding_dim))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight[: x.size(1)]


class ClassToken(nn.Module):
    """Prepends one learned token to a sequence (B, L, D) → (B, L + 1, D), as ViT and BERT's [CLS]."""

    def __init__(self, embedding_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, 1, embedding_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.weight.expand(x.size(0), -1, -1), x], dim=1)


# The parameter forms (ops/base.py ParameterForm): what forward() computes where the enclosing module
# holds the weight itself, ``self.cls_token`` / ``self.pos_embedding``; the generated code writes
# the same expressions inline.


def prepend_token(x: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    """torch.cat([token.expand(x.size(0), -1, -1), x], dim=1) for a token (1, 1, D)."""
    return torch.cat([token.expand(x.size(0), -1, -1), x], dim=1)


def add_positions(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """x + table for a table (1, L, D): one vector per position."""
    return x + table
