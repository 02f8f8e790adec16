"""Assembling the graph: the translated nodes, their blocks (the containers they were called in)
and the edges between them, named as the original module names them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..graph import FORMAT, RESERVED_NAMES
from ..ops import get_op
from .errors import ModuleImportError
from .layout import layout

_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]{0,63}|[0-9]{1,6})$")  # as graph.ModuleName
_MAX_ID = 64
INPUT_KEY = ""  # the producer key of the model input


@dataclass
class Node:
    """One layer or merge the trace turned into, before it has its graph id."""

    key: str  # the fx node's name
    op: str
    params: dict[str, Any]
    container: tuple[str, ...]  # module path of the block holding it; () is the top level
    local: str  # the attribute name it wants inside its block
    path: str  # for messages: the module path, or the function and where it is called
    module: nn.Module | None = None  # the original leaf (None: made from a function)
    inputs: list[str] = field(default_factory=list)  # producer keys in argument order; "" is the input
    id: str = ""
    name: str | None = None
    parameter: nn.Parameter | None = None  # the original raw parameter of an op in its parameter form

    @property
    def named(self) -> bool:
        """Whether the original names it (a layer attribute or a raw parameter): the name is kept."""
        return self.module is not None or self.parameter is not None

    def weights(self) -> list[nn.Parameter]:
        if self.parameter is not None:
            return [self.parameter]
        return list(self.module.parameters()) if self.module is not None else []


def is_merge(op: str) -> bool:
    return get_op(op).merge is not None


def assemble(nodes: list[Node], *, out_key: str, shape: tuple[int, ...], dtype: str, name: str,
             type_at: Callable[[str], str], block_params: dict[tuple[str, ...], dict[str, Any]] | None = None,
             ) -> tuple[dict[str, Any], dict[str, str]]:
    """The graph JSON for the translated nodes (in forward order), laid out, and each graph node's
    module path (for messages). Blocks are the containers the nodes were called in."""
    blocks: dict[tuple[str, ...], str] = {}  # container path → block id
    containers: set[tuple[str, ...]] = set()
    for node in nodes:
        for k in range(1, len(node.container) + 1):
            containers.add(node.container[:k])
    ordered_blocks = sorted(containers, key=lambda c: (len(c), _first_use(c, nodes)))
    used_ids: set[str] = set()
    names: dict[tuple[str, ...], set[str]] = {}

    def new_id(text: str) -> str:
        base = re.sub(r"\W", "_", text)
        if not base or base[0].isdigit():
            base = "layer_" + base
        base = base[-_MAX_ID:].lstrip("0123456789") or "layer"
        cand, k = base, 2
        while cand in used_ids or cand in RESERVED_NAMES:
            suffix = f"_{k}"
            cand = base[: _MAX_ID - len(suffix)] + suffix
            k += 1
        used_ids.add(cand)
        return cand

    def check_name(local: str, path: str) -> None:
        if not _NAME.match(local):
            raise ModuleImportError(path, f"the attribute name {local!r} is not a Python identifier or an "
                                          "index; LayerLab names modules by identifiers")

    # Names the original gives (block and layer attributes) are kept exactly: reserve them first.
    for c in ordered_blocks:
        check_name(c[-1], ".".join(c))
        names.setdefault(c[:-1], set()).add(c[-1])
    for node in nodes:
        if node.named:
            check_name(node.local, node.path)
            names.setdefault(node.container, set()).add(node.local)
    for c in ordered_blocks:
        blocks[c] = new_id(".".join(c))
    for node in nodes:
        if node.named:
            node.id = new_id(".".join((*node.container, node.local)))  # as the graph nests it
            node.name = node.local if node.local != node.id else None
    for node in nodes:
        if node.named:
            continue
        taken = names.setdefault(node.container, set())
        local, k = node.local, 1
        while local in taken:
            local = f"{node.local}_{k}"
            k += 1
        prefix = ".".join(node.container)
        node.id = new_id(f"{prefix}.{local}" if prefix else local)
        if is_merge(node.op):  # not a module: its id is its name among the siblings
            while node.id in taken:
                node.id = new_id(node.id)
            taken.add(node.id)
        else:
            taken.add(local)
            node.name = local if local != node.id else None
    input_id, output_id = new_id("input"), new_id("output")

    ids = {node.key: node.id for node in nodes} | {INPUT_KEY: input_id}
    where = {node.key: node.container for node in nodes} | {INPUT_KEY: ()}
    edges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    block_inputs: dict[tuple[str, ...], list[str]] = {}
    block_outputs: dict[tuple[str, ...], list[str]] = {}

    def rep(key: str, level: tuple[str, ...]) -> str:
        c = where[key]
        return ids[key] if c == level else blocks[c[: len(level) + 1]]

    def note(table: dict[tuple[str, ...], list[str]], c: tuple[str, ...], key: str) -> None:
        if key not in table.setdefault(c, []):
            table[c].append(key)

    twice: list[ModuleImportError] = []  # raised after the block checks, which explain more

    def connect(src: str, dst: str, *, merge: Node | None = None) -> None:
        if (src, dst) in seen:
            if merge is not None:
                twice.append(ModuleImportError(merge.path, f"{merge.op} takes the same tensor twice ({src}); "
                                                           "a graph edge can join two nodes only once"))
            return
        seen.add((src, dst))
        edges.append((src, dst))

    def link(p: str, consumer: Node | None) -> None:
        cp = where[p]
        cn = consumer.container if consumer is not None else ()
        depth = 0
        while depth < min(len(cp), len(cn)) and cp[depth] == cn[depth]:
            depth += 1
        level = cp[:depth]
        src = rep(p, level)
        for k in range(depth + 1, len(cp) + 1):
            note(block_outputs, cp[:k], p)
        target = ids[consumer.key] if consumer is not None else output_id
        merge = consumer if consumer is not None and is_merge(consumer.op) else None
        if cn == level:
            connect(src, target, merge=merge)
            return
        connect(src, blocks[cn[: depth + 1]])
        note(block_inputs, cn[: depth + 1], p)
        for k in range(depth + 1, len(cn)):
            connect(blocks[cn[:k]], blocks[cn[: k + 1]])
            note(block_inputs, cn[: k + 1], p)
        connect(blocks[cn], target, merge=merge)

    for node in nodes:
        for p in node.inputs:
            link(p, node)
    link(out_key, None)

    what = {INPUT_KEY: "the model input"} | {node.key: node.path for node in nodes}
    for c in ordered_blocks:
        path = ".".join(c)
        ins, outs = block_inputs.get(c, []), block_outputs.get(c, [])
        if len(ins) != 1:
            raise ModuleImportError(
                path, f"{type_at(path)} takes {len(ins)} inputs ({', '.join(what[k] for k in ins)}); a "
                      "Block takes one tensor: call its layers in one chain from one input",
            )
        if len(outs) != 1:
            raise ModuleImportError(
                path, f"{len(outs)} values from inside {type_at(path)} are used outside it "
                      f"({', '.join(what[k] for k in outs)}); a Block has one output",
            )
    if twice:
        raise twice[0]

    data_nodes: list[dict[str, Any]] = [
        {"id": input_id, "op": "Input", "params": {"shape": list(shape)}
         | ({"dtype": dtype} if dtype != "float32" else {})},
    ]
    emitted: set[tuple[str, ...]] = set()
    for node in nodes:  # forward order, each block just before its first member
        for k in range(1, len(node.container) + 1):
            c = node.container[:k]
            if c in emitted:
                continue
            emitted.add(c)
            entry: dict[str, Any] = {"id": blocks[c], "op": "Block", "params": dict((block_params or {}).get(c, {}))}
            if len(c) > 1:
                entry["parent"] = blocks[c[:-1]]
            if c[-1] != blocks[c]:
                entry["name"] = c[-1]
            entry["label"] = type_at(".".join(c))
            data_nodes.append(entry)
        entry = {"id": node.id, "op": node.op, "params": node.params}
        if node.container:
            entry["parent"] = blocks[node.container]
        if node.name is not None:
            entry["name"] = node.name
        weights = node.weights()
        if weights and not any(w.requires_grad for w in weights):
            entry["frozen"] = True
        data_nodes.append(entry)
    data_nodes.append({"id": output_id, "op": "Output", "params": {}})
    data = {
        "format": FORMAT,
        "name": name,
        "nodes": data_nodes,
        "edges": [{"source": s, "target": t} for s, t in edges],
    }
    paths = {node.id: node.path for node in nodes} | {blocks[c]: ".".join(c) for c in ordered_blocks}
    return layout(data), paths


def _first_use(c: tuple[str, ...], nodes: list[Node]) -> int:
    return next(i for i, n in enumerate(nodes) if n.container[: len(c)] == c)
