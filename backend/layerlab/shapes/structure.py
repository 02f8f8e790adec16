"""The graph's structure, checked before anything is sized: node ids, parents and nesting, the
containers (the top level and each Block) with the edges among their members, the order inside
a container, and whether every member leads to the container's exit."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..graph import Graph
from .ledger import Failed, Ledger, NodeAccount

MAX_NESTING = 32  # blocks inside blocks; each level is a few frames of recursion


@dataclass
class Container:
    """The top level or one Block: its members, and the edges among them."""

    id: str | None
    members: list[Any]
    preds: dict[str, list[str]] = field(default_factory=dict)  # member -> sources (block id = block input)
    succs: dict[str, list[str]] = field(default_factory=dict)
    exits: list[str] = field(default_factory=list)  # explicit child -> block edges


class Structure:
    def __init__(self, graph: Graph, ledger: Ledger) -> None:
        self.g = graph
        self.ledger = ledger
        self.error = ledger.error
        self.by_id: dict[str, Any] = {}
        self.containers: dict[str | None, Container] = {}

    def check(self) -> None:
        g, by_id = self.g, self.by_id
        nested: list[Any] = []
        found: dict[str, list[str]] = {"Input": [], "Output": []}
        for n in g.nodes:  # ids, nesting, and the Input and Output, in one pass (the hot path of a report)
            node_id = n.id
            if node_id in by_id:
                self.error(node_id, f"duplicate node id {node_id!r}", field="id",
                           suggestion="give every node its own id")
            by_id[node_id] = n
            if n.parent is not None:
                nested.append(n)
            if n.op in found:
                found[n.op].append(node_id)
        acc, is_frozen = self.ledger.acc, self.is_frozen
        for n in g.nodes:  # each id's account (opened here, written by the walk); the first node with an id keeps it
            if n.id not in acc:
                acc[n.id] = NodeAccount(n.id, n.op, n.frozen if n.parent is None else is_frozen(n))
        for n in nested:
            parent = self.by_id.get(n.parent)
            if parent is None:
                self.error(n.id, f"parent {n.parent!r} does not exist", field="parent")
            elif parent.op != "Block":
                self.error(n.id, f"parent {n.parent!r} is a {parent.op}, not a Block", field="parent")
            elif n.op in ("Input", "Output"):
                self.error(n.id, f"{n.op} must be at the top level, not inside block {n.parent!r}", field="parent")
            elif self.ancestry_cycle(n):
                self.error(n.id, f"block nesting loops back to itself through {n.parent!r}", field="parent")
        for op, ids in found.items():
            if not ids:
                self.error(None, f"the graph has no {op} node", suggestion=f"add one {op} node")
            elif len(ids) > 1:
                self.error(ids[1], f"the graph has {len(ids)} {op} nodes ({', '.join(ids)}); it needs exactly one",
                           suggestion=f"delete all but one {op}")
        if self.ledger.errors:
            return
        # the analysis, the compiler and the code generator recurse once per level of nesting
        depth: dict[str, int] = {n.id: 1 for n in g.nodes if n.parent is None}
        for n in nested:
            chain, cur = [], n
            while cur is not None and cur.id not in depth:
                chain.append(cur.id)
                cur = self.by_id[cur.parent] if cur.parent else None
            base = depth[cur.id] if cur is not None else 0
            for i, node_id in enumerate(reversed(chain)):
                depth[node_id] = base + i + 1
            if depth[n.id] > MAX_NESTING + 1:
                self.error(n.id, f"blocks nest {depth[n.id] - 1} deep here, above the limit of {MAX_NESTING}",
                           field="parent", suggestion="flatten some of the blocks")
                return
        top: list[Any] = []
        self.containers = containers = {None: Container(None, top)}
        for n in g.nodes:
            if n.op == "Block":
                containers[n.id] = Container(n.id, [])
        # sibling module names must be unique (they become attribute names)
        seen: dict[tuple[str | None, str], str] = {}
        for n in g.nodes:
            key = (n.parent, n.name or n.id)  # its module_name
            if key in seen and n.op not in ("Input", "Output"):
                self.error(n.id, f"module name {key[1]!r} is already used by {seen[key]!r} in the same block",
                           field="name")
            seen[key] = n.id
            if n.parent is None:
                top.append(n)
            else:
                containers[n.parent].members.append(n)
        self.classify_edges()
        for c in self.containers.values():
            if c.id is not None and not c.members:
                self.error(c.id, "the block is empty", suggestion="drag layers into it, or delete it")

    def ancestry_cycle(self, n: Any) -> bool:
        seen = {n.id}
        cur = n.parent
        while cur is not None:
            if cur in seen:
                return True
            seen.add(cur)
            node = self.by_id.get(cur)
            cur = node.parent if node is not None else None
        return False

    def classify_edges(self) -> None:
        pairs: set[tuple[str, str]] = set()
        for c in self.containers.values():
            c.preds = {m.id: [] for m in c.members}
            c.succs = {m.id: [] for m in c.members}
        by_id, top = self.by_id, self.containers[None]
        for i, e in enumerate(self.g.edges):
            src, dst = by_id.get(e.source), by_id.get(e.target)
            if (src is not None and dst is not None and src.parent is None and dst.parent is None
                    and dst.op != "Input" and src.op != "Output" and e.source != e.target
                    and (pair := (e.source, e.target)) not in pairs):  # the common case: two top-level layers
                pairs.add(pair)
                top.preds[e.target].append(e.source)
                top.succs[e.source].append(e.target)
                continue
            label = f"edge {e.source} → {e.target}"
            if src is None or dst is None:
                missing = e.source if src is None else e.target
                known = e.target if src is None else e.source
                self.error(known if known in self.by_id else None,
                           f"{label} refers to a node {missing!r} that does not exist", field=f"edges[{i}]")
                continue
            if e.source == e.target:
                self.error(e.source, f"{label} connects the node to itself", field=f"edges[{i}]")
                continue
            if (e.source, e.target) in pairs:
                self.error(e.target, f"{label} is given twice", field=f"edges[{i}]")
                continue
            pairs.add((e.source, e.target))
            if dst.op == "Input":
                self.error(e.target, f"{label}: the Input takes no incoming edges", field=f"edges[{i}]")
            elif src.op == "Output":
                self.error(e.source, f"{label}: the Output has no outgoing edges", field=f"edges[{i}]")
            elif src.parent == dst.parent:
                c = self.containers[src.parent]
                c.preds[dst.id].append(src.id)
                c.succs[src.id].append(dst.id)
            elif dst.parent == src.id:  # block → child: the block's input feeds the child
                self.containers[src.id].preds[dst.id].append(src.id)
            elif src.parent == dst.id:  # child → block: the child's output is the block's output
                self.containers[dst.id].exits.append(src.id)
            else:
                where = f"block {dst.parent!r}" if dst.parent else "the top level"
                self.error(e.target, f"{label} crosses a block boundary ({e.source} is in "
                           f"{'block ' + repr(src.parent) if src.parent else 'the top level'}, {e.target} in {where})",
                           field=f"edges[{i}]",
                           suggestion="connect to the block itself; inside, its first layer receives the block's input")

    # -- what the walk asks, container by container ------------------------------------------

    def is_frozen(self, n: Any) -> bool:
        if n.frozen or n.parent is None:
            return n.frozen
        cur: Any = n
        seen: set[str] = set()
        while cur is not None and cur.id not in seen:  # a parent loop is reported by check
            if cur.frozen:
                return True
            seen.add(cur.id)
            cur = self.by_id.get(cur.parent) if cur.parent else None
        return False

    def topo(self, c: Container) -> list[Any] | None:
        ids = [m.id for m in c.members]
        preds = c.preds
        if c.id is None:  # only a Block's members have an edge from their container
            indeg = {i: len(preds[i]) for i in ids}
        else:
            indeg = {i: sum(1 for p in preds[i] if p != c.id) for i in ids}
        queue = deque(i for i in ids if indeg[i] == 0)
        order: list[str] = []
        succs, pop, push = c.succs, queue.popleft, queue.append
        while queue:
            i = pop()
            order.append(i)
            for s in succs[i]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    push(s)
        if len(order) < len(ids):
            stuck = [i for i in ids if indeg[i] > 0]
            # the nodes merely downstream of the loop are stuck too: peel off those that lead nowhere stuck
            loop = set(stuck)
            while dead := {i for i in loop if not any(s in loop for s in c.succs[i])}:
                loop -= dead
            stuck = [i for i in stuck if i in loop]
            self.error(stuck[0], "the graph has a cycle through " + " → ".join(stuck),
                       suggestion="remove one of the edges that loops back")
            return None
        return [self.by_id[i] for i in order]

    def check_reach(self, c: Container, order: list[Any], failed: set[str]) -> None:
        """Every member must lead to the container's exit; at the top level, that is the Output, in a
        block its explicit output (without one, loose ends are counted by ``exit_of``)."""
        if c.id is None:
            out = next((m for m in order if m.op == "Output"), None)
            if out is None:
                return
            if not c.preds[out.id]:
                self.error(out.id, "nothing is connected to the Output",
                           suggestion="connect the last layer to the Output", kind="unconnected")
                return
            exit_id, where = out.id, "the Output"
        elif len(c.exits) == 1:
            exit_id, where = c.exits[0], f"the output of block {c.id!r}"
        else:
            return
        useful = {exit_id}
        stack = [exit_id]
        preds, cid, pop, push, use = c.preds, c.id, stack.pop, stack.append, useful.add
        while stack:
            for p in preds[pop()]:
                if p not in useful and p != cid:  # cid: the block's own input
                    use(p)
                    push(p)
        unused = [m for m in order if m.id not in useful and m.id not in failed]
        for m in unused:
            self.error(m.id, f"its output is not used: no path leads from it to {where}",
                       suggestion=f"connect {m.id} toward {where}, or delete it", kind="unconnected")
        if unused and c.id is not None:
            raise Failed  # once, not again for each copy of a repeated block

    def exit_of(self, c: Container, order: list[Any]) -> str | None:
        if c.id is None:
            return next(m.id for m in order if m.op == "Output")
        if c.exits:
            if len(c.exits) > 1:
                self.error(c.id, f"the block has {len(c.exits)} outputs ({', '.join(c.exits)})",
                           suggestion="join them with an Add or Concat inside the block")
                return None
            return c.exits[0]
        sinks = [m.id for m in order if not c.succs[m.id]]
        if len(sinks) != 1:
            self.error(c.id, f"the block has {len(sinks)} loose ends ({', '.join(sinks)}); it needs exactly one output",
                       suggestion="join them with an Add or Concat inside the block", kind="unconnected")
            return None
        return sinks[0]
