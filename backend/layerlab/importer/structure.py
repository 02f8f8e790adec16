"""Recovering a graph's structure from the modules a graph compiles to, so that export → import
gives the same graph back: a ``Residual(body, shortcut)`` becomes a residual Block again, and an
``nn.Sequential`` of identical blocks ``0``..``n−1`` chained one into the next becomes one Block
with ``repeat: n``. Both keep every module path, so the state_dict keys stay the same.

Works on the translated nodes before they are assembled: each node names its container (the
module path of the block holding it); a container's params are returned by container.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..modules import Residual
from ..ops import get_op
from .assemble import Node

Container = tuple[str, ...]


class Structure:
    """One pass over the translated nodes (``nodes`` is changed in place)."""

    def __init__(self, module: nn.Module, nodes: dict[str, Node], out_key: str) -> None:
        self.module = module
        self.nodes = nodes
        self.out_key = out_key
        self.params: dict[Container, dict[str, Any]] = {}  # block params by container
        self.origin: dict[Container, str] = {}  # container → the module path it was (for labels)

    def run(self) -> str:
        """Residual blocks first (innermost first), then repeats; returns the new output key."""
        for c in sorted(self.containers(), key=len, reverse=True):
            if isinstance(self.module_at(c), Residual):
                self.residual(c)
        for c in sorted(self.containers(), key=len, reverse=True):
            self.repeat(c)
        return self.out_key

    # -- helpers -----------------------------------------------------------------------------

    def containers(self) -> set[Container]:
        return {n.container[:k] for n in self.nodes.values() for k in range(1, len(n.container) + 1)}

    def module_at(self, c: Container) -> nn.Module | None:
        try:
            return self.module.get_submodule(self.origin.get(c, ".".join(c)))
        except AttributeError:
            return None

    def inside(self, c: Container) -> list[Node]:
        return [n for n in self.nodes.values() if n.container[: len(c)] == c]

    def replace_input(self, old: str, new: str) -> None:
        for n in self.nodes.values():
            n.inputs = [new if k == old else k for k in n.inputs]
        if self.out_key == old:
            self.out_key = new

    def move(self, c: Container, level: str) -> None:
        """Drop the path element ``level`` right under ``c``: its members now sit in ``c``."""
        inner = (*c, level)
        olds = {m.container[:k] for m in self.inside(inner) for k in range(len(inner) + 1, len(m.container) + 1)}
        for old in olds:
            self.origin[c + old[len(inner):]] = self.origin.pop(old, ".".join(old))
        for n in self.inside(inner):
            n.container = c + n.container[len(inner):]
        for old in [k for k in self.params if k[: len(inner)] == inner]:
            self.params[c + old[len(inner):]] = self.params.pop(old)

    # -- residual ----------------------------------------------------------------------------

    def residual(self, c: Container) -> None:
        """``Residual(body, shortcut)``: body(x) + shortcut(x), with an Identity or a projection."""
        members = self.inside(c)
        own = [n for n in members if n.container == c]
        add = [n for n in own if n.op == "Add" and n.module is None]
        identity = [n for n in own if n.local == "shortcut" and n.op == "Identity"]
        body = [n for n in members if n.container[: len(c) + 1] == (*c, "body")]
        shortcut = [n for n in members if n.container[: len(c) + 1] == (*c, "shortcut")] + identity
        if len(add) != 1 or len(own) != 1 + len(identity) or not body or len(body) + len(shortcut) + 1 != len(members):
            return  # not the Residual LayerLab builds: leave it as the graph fx traced
        body_keys, short_keys = {n.key for n in body}, {n.key for n in shortcut}
        body_out = [k for k in add[0].inputs if k in body_keys]
        short_out = [k for k in add[0].inputs if k in short_keys]
        if len(body_out) != 1 or len(short_out) != 1:
            return
        for n in [add[0], *shortcut]:
            del self.nodes[n.key]
        self.replace_input(add[0].key, body_out[0])
        self.move(c, "body")
        self.params[c] = {"residual": True, "shortcut": "identity" if identity else "projection"}

    # -- repeat ------------------------------------------------------------------------------

    def repeat(self, c: Container) -> None:
        """Children ``0``..``n−1`` of ``c``, each a block, identical, each feeding the next."""
        members = self.inside(c)
        if not members or any(len(n.container) <= len(c) for n in members):
            return
        names = {n.container[len(c)] for n in members}
        n_copies = len(names)
        if n_copies < 2 or names != {str(i) for i in range(n_copies)}:
            return
        copies = [[n for n in members if n.container[len(c)] == str(i)] for i in range(n_copies)]
        signatures = [self.signature(c, i, copy) for i, copy in enumerate(copies)]
        if any(s != signatures[0] for s in signatures[1:]):
            return
        outs = [self.output_of(copy) for copy in copies]
        if None in outs:
            return
        for i, copy in enumerate(copies[1:], start=1):  # copy i takes copy i−1's output, and nothing else
            outside = {k for n in copy for k in n.inputs if k not in {m.key for m in copy}}
            if outside != {outs[i - 1]}:
                return
        users = [n for n in self.nodes.values() if n.container[: len(c)] != c]
        for out in outs[:-1]:  # only the last copy's output leaves the block
            if any(out in n.inputs for n in users) or self.out_key == out:
                return
        for copy in copies[1:]:
            for n in copy:
                del self.nodes[n.key]
        for key in [k for k in self.params if k[: len(c) + 1] != (*c, "0") and k[: len(c)] == c and len(k) > len(c)]:
            del self.params[key]
        for n in copies[0]:  # the copies differ only in the sizes they infer (in_channels 3, then 16)
            n.params = _own(n)
        first = self.params.pop((*c, "0"), {})
        self.replace_input(outs[-1], outs[0])
        self.move(c, "0")
        self.params[c] = self.params.get(c, {}) | first | {"repeat": n_copies}

    def signature(self, c: Container, i: int, copy: list[Node]) -> list[Any]:
        keys = [n.key for n in copy]
        inner = (*c, str(i))

        def rel(k: str) -> Any:
            return keys.index(k) if k in keys else "outside"

        sig: list[Any] = [n.op for n in copy]
        sig += [(n.container[len(inner):], n.op, _own(n), n.local, type(n.module).__name__, [rel(k) for k in n.inputs])
                for n in copy]
        sig += sorted((k[len(inner):], sorted(v.items())) for k, v in self.params.items()
                      if k[: len(inner)] == inner)
        return sig

    def output_of(self, copy: list[Node]) -> str | None:
        keys = {n.key for n in copy}
        used_inside = {k for n in copy for k in n.inputs}
        outs = [n.key for n in copy if n.key not in used_inside]
        return outs[0] if len(outs) == 1 and outs[0] in keys else None


def _own(n: Node) -> dict[str, Any]:
    """A node's params less those inferred from the incoming shape."""
    inferred = get_op(n.op).input_size_args
    return {k: v for k, v in n.params.items() if k not in inferred}
