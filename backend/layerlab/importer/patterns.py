"""How forward() writes what is not a catalog function call, recognized on the traced fx nodes:
a raw parameter used as an op's parameter form (a ViT's class token and position table), an index
that picks one position (``x[:, 0]``) or a recurrent layer's last step (``out[:, -1]``), and the
per-sample shapes a view or reshape maps between (a Flatten or an Unflatten)."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn


@dataclass(frozen=True)
class RawUse:
    """A raw parameter (at ``path``) used as ``op``'s parameter form on the tensor ``x``."""

    op: str
    path: str
    param: nn.Parameter
    x: fx.Node
    sliced: fx.Node | None = None  # p[:, :k]: it must take the whole table


def as_flatten(s: tuple[int, ...], t: tuple[int, ...]) -> tuple[int, int] | None:
    """Sample dims ``a..b`` of ``s`` merged give ``t`` (the widest such span first)."""
    for a in range(len(s)):
        for b in range(len(s) - 1, a, -1):
            merged = 1
            for d in s[a : b + 1]:
                merged *= d
            if s[:a] + (merged,) + s[b + 1 :] == t:
                return a, b
    return None


def as_unflatten(s: tuple[int, ...], t: tuple[int, ...]) -> tuple[int, tuple[int, ...]] | None:
    extra = len(t) - len(s)
    if extra < 1:
        return None
    for i in range(len(s)):
        sizes = t[i : i + extra + 1]
        prod = 1
        for d in sizes:
            prod *= d
        if s[:i] == t[:i] and s[i + 1 :] == t[i + extra + 1 :] and prod == s[i]:
            return i, sizes
    return None


def class_token_use(expand: fx.Node, live: set[fx.Node]) -> tuple[fx.Node, str, fx.Node, set[fx.Node]] | None:
    """``torch.cat([p.expand(b, -1, -1), x], dim=1)``: (the cat, the op, x, the helper nodes)."""
    if expand.op != "call_method" or expand.target != "expand" or list(expand.args[2:]) != [-1, -1] or expand.kwargs:
        return None
    users = [u for u in expand.users if u in live]
    if len(users) != 1 or users[0].op != "call_function" or users[0].target is not torch.cat:
        return None
    cat = users[0]
    tensors = cat.args[0] if cat.args else cat.kwargs.get("tensors")
    dim = cat.args[1] if len(cat.args) > 1 else cat.kwargs.get("dim", 0)
    if not isinstance(tensors, (list, tuple)) or len(tensors) != 2 or tensors[0] is not expand or dim != 1 \
            or not isinstance(tensors[1], fx.Node):
        return None
    return cat, "ClassToken", tensors[1], {expand}


def positions_use(param: fx.Node, user: fx.Node, live: set[fx.Node]
                  ) -> tuple[fx.Node, str, fx.Node, set[fx.Node]] | None:
    """``x + p`` (or ``p + x``, ``torch.add(x, p)``, ``x += p``), also of a leading slice of the table,
    ``x += p[:, :(n + 1)]``: (the add, the op, x, the slice if any). Whether the slice takes the
    whole table is for the caller to check on the probe's shapes."""
    helpers: set[fx.Node] = set()
    table = param
    if user.op == "call_function" and user.target is operator.getitem and _leading_slice(user.args[1]):
        users = [u for u in user.users if u in live]
        if len(users) != 1:
            return None
        helpers, table, user = {user}, user, users[0]
    add = user
    if add.op != "call_function" or add.target not in (operator.add, operator.iadd, torch.add) or add.kwargs \
            or len(add.args) != 2:
        return None
    others = [a for a in add.args if a is not table]
    if len(others) != 1 or not isinstance(others[0], fx.Node):
        return None
    return add, "PositionalEmbedding", others[0], helpers


def _leading_slice(index: Any) -> bool:
    """``[:, :k]`` (k an int or a size read from a tensor)."""
    full = slice(None, None, None)
    return isinstance(index, tuple) and len(index) == 2 and index[0] == full and isinstance(index[1], slice) \
        and index[1].start is None and index[1].step is None


def as_select(index: Any) -> tuple[int, int] | None:
    """``[:, 0]``, ``[:, :, 3]``, ``[:, -1, :]``: (the dim, counted with the batch; the position)."""
    full = slice(None, None, None)
    if not isinstance(index, tuple):
        return None
    ints = [i for i, part in enumerate(index) if isinstance(part, int) and not isinstance(part, bool)]
    if len(ints) != 1 or ints[0] == 0 or any(part != full for i, part in enumerate(index) if i != ints[0]):
        return None
    return ints[0], index[ints[0]]


def is_last_step(index: Any) -> bool:
    """``[:, -1]`` or ``[:, -1, :]``: every sample's last step."""
    full = slice(None, None, None)
    return isinstance(index, tuple) and len(index) in (2, 3) and index[0] == full and index[1] == -1 \
        and all(i == full for i in index[2:])
