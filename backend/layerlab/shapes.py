"""Stage 2, shapes and costs: every node's output shape, parameters, MACs and activation size,
from the catalog's integer formulas. No torch import here.

``analyze`` walks the graph container by container (the top level, then each Block's children),
collects every error instead of stopping at the first, and produces both the user-facing
:class:`Report` and the :class:`~layerlab.plan.ModelPlan` the compiler turns into modules.
"""

from __future__ import annotations

import gc
from collections import deque
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal

import pydantic_core

from .graph import (
    FORMAT,
    Graph,
    GraphError,
    InitSpec,
    env_limit,
    expansion_error,
    parse_graph,
    parse_graph_json,
)
from .memo import ShapeMemo
from .ops import NodeProblem, TensorInfo, get_op
from .ops.base import MAX_ACTIVATION, MAX_NODE_PARAMS, fmt_shape, numel
from .plan import DagPlan, LayerPlan, ModelPlan, Plan, ResidualPlan, SeqPlan, Step
from .report import BYTES_PER_ELEMENT, OPTIMIZER_STATE, NodeReport, OptimizerName, Report, Totals

DEFAULT_MAX_NODES = 5000
_SUMMED = ("params", "trainable_params", "frozen_params", "macs", "activations")  # the totals of the top level
MAX_NESTING = 32  # blocks inside blocks; each level is a few frames of recursion


@dataclass
class Analysis:
    report: Report
    plan: ModelPlan | None  # None when the graph has errors
    graph: Graph | None = None


# ---------------------------------------------------------------------------------------------
# Public entry points


def infer(graph: Graph | dict[str, Any], *, batch_size: int = 32, optimizer: OptimizerName = "adam") -> Report:
    """Shapes, parameters, MACs and memory for every node; errors collected, never raised."""
    return analyze(graph, batch_size=batch_size, optimizer=optimizer).report


def analyze(
    graph: Graph | dict[str, Any],
    *,
    batch_size: int = 32,
    optimizer: OptimizerName = "adam",
    max_nodes: int | None = None,
    max_instances: int | None = None,
) -> Analysis:
    # The walk allocates many small objects and frees none of them in cycles; the cyclic GC's
    # full passes over a large heap would make big graphs cost more than linear time.
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        return _analyze(graph, batch_size=batch_size, optimizer=optimizer, max_nodes=max_nodes,
                        max_instances=max_instances)
    finally:
        if gc_enabled:
            gc.enable()


def report_json(body: bytes, *, batch_size: int = 32, optimizer: OptimizerName = "adam",
                memo: ShapeMemo | None = None) -> bytes:
    """``infer(json.loads(body))`` as JSON, for the API, without a pydantic model per node in between.

    With a ``memo`` (``memo.py``) it redoes only what changed since an earlier report: nodes and
    edges whose text it has validated are not validated again, a shape rule is not rerun for the
    same node and inputs, and when the graph differs from one reported before only in some nodes'
    settings, only the top-level nodes those changes reach are walked again. The answer is the
    same as without the memo. Raises the graph-error 422 when ``body`` is not JSON."""
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        if memo is None:  # a cold report: nothing seen before
            memo = ShapeMemo()
        parsed, errors = parse_graph_json(body, memo=memo)
        early = _early_report(parsed, errors, max_nodes=None, max_instances=None)
        if early is not None:
            return early.model_dump_json().encode()
        assert parsed is not None
        return _Analyzer(parsed, batch_size=batch_size, optimizer=optimizer, memo=memo).run_json()
    finally:
        if gc_enabled:
            gc.enable()


def _analyze(graph: Graph | dict[str, Any], *, batch_size: int, optimizer: OptimizerName,
             max_nodes: int | None, max_instances: int | None) -> Analysis:
    parsed, errors = parse_graph(graph)
    early = _early_report(parsed, errors, max_nodes=max_nodes, max_instances=max_instances)
    if early is not None:
        return Analysis(early, None, parsed)
    assert parsed is not None
    return _Analyzer(parsed, batch_size=batch_size, optimizer=optimizer).run()


def _early_report(parsed: Graph | None, errors: list[GraphError], *, max_nodes: int | None,
                  max_instances: int | None) -> Report | None:
    """The report of a graph that is not walked: invalid JSON, too many nodes, too many instances."""
    if parsed is None:
        return Report(valid=False, errors=errors)
    limit = max_nodes or _env_max_nodes()
    if len(parsed.nodes) > limit:
        err = GraphError(
            message=f"the graph has {len(parsed.nodes)} nodes, above the limit of {limit}",
            suggestion="group repeated layers into a Block with repeat, or raise LAYERLAB_MAX_NODES",
        )
        return Report(valid=False, errors=[err])
    too_large = expansion_error(parsed, max_instances)
    if too_large is not None:  # before anything expands a repeat
        return Report(valid=False, errors=[too_large])
    return None


def _env_max_nodes() -> int:
    return env_limit("LAYERLAB_MAX_NODES", DEFAULT_MAX_NODES)


# ---------------------------------------------------------------------------------------------
# The walk


@dataclass
class _Acc:
    """Per-node totals across its instances; becomes a NodeReport at the end (plain attributes
    here because the walk updates them once per instance)."""

    id: str
    op: str
    frozen: bool
    status: str = "skipped"
    input_shapes: list[list[int]] = field(default_factory=list)
    output_shape: list[int] | None = None
    dtype: str | None = None
    params: int = 0
    trainable_params: int = 0
    frozen_params: int = 0
    macs: int = 0
    activations: int = 0
    instances: int = 0
    formula: list[str] = field(default_factory=list)
    resolved: dict[str, Any] = field(default_factory=dict)
    first: bool = True
    encoded: bytes | None = None  # its JSON, made once the walk is over (a later walk may reuse it)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        del data["first"], data["encoded"]
        return data

    def to_json(self) -> bytes:
        if self.encoded is None:
            self.encoded = pydantic_core.to_json(self.to_dict())
        return self.encoded


@dataclass
class _Walked:
    """What the walk of a valid graph leaves for the next report of it (``_Analyzer.walk_again``):
    its nodes and edges as validated, its containers, and at the top level each member's inputs and
    output in walk order. Nothing in it changes after the walk."""

    nodes: list[Any]
    edges: list[Any]
    containers: dict[str | None, _Container]
    acc: dict[str, _Acc]
    order: list[str]
    inputs: dict[str, list[TensorInfo]]
    values: dict[str, TensorInfo]
    out: TensorInfo


@dataclass
class _Container:
    """The top level or one Block: its members, and the edges among them."""

    id: str | None
    members: list[Any]
    preds: dict[str, list[str]] = field(default_factory=dict)  # member -> sources (block id = block input)
    succs: dict[str, list[str]] = field(default_factory=dict)
    exits: list[str] = field(default_factory=list)  # explicit child -> block edges


class _Failed(Exception):
    """A block could not be evaluated; its errors are already recorded."""


class _Analyzer:
    def __init__(self, graph: Graph, *, batch_size: int, optimizer: str, memo: ShapeMemo | None = None) -> None:
        self.g = graph
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.memo = memo
        self.errors: list[GraphError] = []
        self.by_id: dict[str, Any] = {}
        self.acc: dict[str, _Acc] = {}
        self.containers: dict[str | None, _Container] = {}
        # the top level's walk order and each member's inputs and output (kept for walk_again)
        self.top_order: list[str] = []
        self.top_inputs: dict[str, list[TensorInfo]] = {}
        self.top_values: dict[str, TensorInfo] = {}

    # -- errors ------------------------------------------------------------------------------

    def error(self, node: str | None, message: str, *, field: str | None = None, suggestion: str | None = None,
              fix: dict[str, Any] | None = None, kind: Literal["error", "unconnected"] = "error") -> None:
        subject = f"{node}: " if node else ""
        self.errors.append(
            GraphError(node=node, field=field, message=subject + message, suggestion=suggestion, fix=fix, kind=kind)
        )
        if node in self.acc:
            self.acc[node].status = "error"

    # -- structure ---------------------------------------------------------------------------

    def run(self) -> Analysis:
        root, out = self.walk()
        plan = None
        if root is not None and not self.errors:
            inp = next(n for n in self.g.nodes if n.op == "Input")
            plan = ModelPlan(root=root, input_shape=tuple(inp.params.shape), input_dtype=inp.params.dtype,
                             name=self.g.name)
        # one validation pass in pydantic-core is much cheaper than a model per node
        return Analysis(Report.model_validate(self.finish(out)), plan, self.g)

    def run_report(self) -> dict[str, Any]:
        """The report as plain data in the shape of :class:`Report` (the API serializes it as it is)."""
        return self.finish(self.walk()[1])

    def run_json(self) -> bytes:
        """``run_report`` as JSON. With a memo holding the walk of a graph with the same node ids, try
        ``walk_again`` first; when it does not apply, walk the whole graph."""
        key = tuple(n.id for n in self.g.nodes)
        prev = self.memo.walks.get(key) if self.memo is not None else None
        if prev is not None:
            again = _Analyzer(self.g, batch_size=self.batch_size, optimizer=self.optimizer, memo=self.memo)
            out = again.walk_again(prev)
            if out is not None:
                return again.finish_json(out, key)
        return self.finish_json(self.walk()[1], key)

    def finish_json(self, out: TensorInfo | None, key: tuple[str, ...]) -> bytes:
        valid = not self.errors and out is not None
        if valid and self.memo is not None:
            assert out is not None
            self.memo.walks.put(key, _Walked(nodes=self.g.nodes, edges=self.g.edges,
                                             containers=self.containers, acc=self.acc, order=self.top_order,
                                             inputs=self.top_inputs, values=self.top_values, out=out))
        nodes = b",".join(a.to_json() for a in self.acc.values())
        summary = pydantic_core.to_json(self.summary(out))
        return summary[:-1] + b',"nodes":[' + nodes + b"]}"

    def walk_again(self, prev: _Walked) -> TensorInfo | None:
        """The walk of a graph that is ``prev``'s graph with some nodes' settings changed (params,
        freezing, init, label), not its structure: only the top-level members whose own node, whose
        block's contents, or whose inputs changed are evaluated again; the others keep their results.
        None when that does not apply (structure changed, the Input changed, or an error appeared:
        the full walk then reports it)."""
        g = self.g
        if g.edges is not prev.edges and (len(g.edges) != len(prev.edges)
                                          or any(a is not b for a, b in zip(g.edges, prev.edges))):
            return None
        self.by_id = {n.id: n for n in g.nodes}  # the ids are unique: prev's graph was valid
        dirty: set[str] = set()
        for new, old in zip(g.nodes, prev.nodes):  # the same ids in the same order (the memo's key)
            if new is old:
                continue
            if new.op != old.op or new.parent != old.parent or new.name != old.name or new.op == "Input":
                return None
            top = new
            while top.parent is not None:
                top = self.by_id[top.parent]
            dirty.add(top.id)
        self.containers = prev.containers  # its members are read by id only
        self.acc = dict(prev.acc)  # entries of unchanged members are shared, never written
        self.top_order = prev.order
        self.top_inputs = dict(prev.inputs)
        self.top_values = values = dict(prev.values)
        preds = self.containers[None].preds
        for mid in prev.order:
            m = self.by_id[mid]
            if m.op == "Input":
                continue
            inputs = [values[s] for s in preds[mid]]
            if mid not in dirty and inputs == prev.inputs[mid]:
                continue
            for n in self.inside(m):
                self.acc[n.id] = _Acc(id=n.id, op=n.op, frozen=self.is_frozen(n))
            try:
                values[mid], _ = self.eval_node(m, inputs, frozen=m.frozen, init=m.init)
            except _Failed:
                return None
            self.top_inputs[mid] = inputs
        if self.errors:
            return None
        return values[next(i for i in reversed(prev.order) if self.by_id[i].op == "Output")]

    def inside(self, m: Any) -> list[Any]:
        """``m`` and, for a Block, everything nested in it."""
        found, stack = [], [m]
        while stack:
            n = stack.pop()
            found.append(n)
            if n.op == "Block":
                stack.extend(self.by_id[c.id] for c in self.containers[n.id].members)
        return found

    def walk(self) -> tuple[Plan | None, TensorInfo | None]:
        self.check_structure()
        if self.errors:
            return None, None
        inp = next(n for n in self.g.nodes if n.op == "Input")
        try:
            return self.eval_container(self.containers[None], self.start_input(inp), frozen=False, init=None)
        except _Failed:
            return None, None

    def start_input(self, inp: Any) -> TensorInfo:
        try:
            inferred = get_op("Input").infer(inp.params, [])
        except NodeProblem as p:  # e.g. more elements than an activation may hold: a report error
            self.error(inp.id, p.message, field=p.field, suggestion=p.suggestion)
            raise _Failed from None
        self.record(inp, [], inferred, frozen=False)
        return inferred.out

    def check_structure(self) -> None:
        g = self.g
        for n in g.nodes:
            if n.id in self.by_id:
                self.error(n.id, f"duplicate node id {n.id!r}", field="id", suggestion="give every node its own id")
            self.by_id[n.id] = n
        for n in g.nodes:
            self.acc.setdefault(n.id, _Acc(id=n.id, op=n.op, frozen=self.is_frozen(n)))
        for n in g.nodes:
            if n.parent is None:
                continue
            parent = self.by_id.get(n.parent)
            if parent is None:
                self.error(n.id, f"parent {n.parent!r} does not exist", field="parent")
            elif parent.op != "Block":
                self.error(n.id, f"parent {n.parent!r} is a {parent.op}, not a Block", field="parent")
            elif n.op in ("Input", "Output"):
                self.error(n.id, f"{n.op} must be at the top level, not inside block {n.parent!r}", field="parent")
            elif self.ancestry_cycle(n):
                self.error(n.id, f"block nesting loops back to itself through {n.parent!r}", field="parent")
        for op in ("Input", "Output"):
            found = [n.id for n in g.nodes if n.op == op]
            if not found:
                self.error(None, f"the graph has no {op} node", suggestion=f"add one {op} node")
            elif len(found) > 1:
                self.error(found[1], f"the graph has {len(found)} {op} nodes ({', '.join(found)}); it needs exactly one",
                           suggestion=f"delete all but one {op}")
        if self.errors:
            return
        # the analysis, the compiler and the code generator recurse once per level of nesting
        depth: dict[str, int] = {}
        for n in g.nodes:
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
        # sibling module names must be unique (they become attribute names)
        seen: dict[tuple[str | None, str], str] = {}
        for n in g.nodes:
            key = (n.parent, n.module_name)
            if key in seen and n.op not in ("Input", "Output"):
                self.error(n.id, f"module name {n.module_name!r} is already used by {seen[key]!r} in the same block",
                           field="name")
            seen[key] = n.id
        self.containers = {None: _Container(None, [])}
        for n in g.nodes:
            if n.op == "Block":
                self.containers[n.id] = _Container(n.id, [])
        for n in g.nodes:
            self.containers[n.parent].members.append(n)
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
            for m in c.members:
                c.preds[m.id] = []
                c.succs[m.id] = []
        for i, e in enumerate(self.g.edges):
            label = f"edge {e.source} → {e.target}"
            src, dst = self.by_id.get(e.source), self.by_id.get(e.target)
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

    # -- evaluation --------------------------------------------------------------------------

    def is_frozen(self, n: Any) -> bool:
        cur: Any = n
        seen: set[str] = set()
        while cur is not None and cur.id not in seen:  # a parent loop is reported by check_structure
            if cur.frozen:
                return True
            seen.add(cur.id)
            cur = self.by_id.get(cur.parent) if cur.parent else None
        return False

    def topo(self, c: _Container) -> list[Any] | None:
        ids = [m.id for m in c.members]
        indeg = {i: sum(1 for p in c.preds[i] if p != c.id) for i in ids}
        queue = deque(i for i in ids if indeg[i] == 0)
        order: list[str] = []
        while queue:
            i = queue.popleft()
            order.append(i)
            for s in c.succs[i]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    queue.append(s)
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

    def eval_container(self, c: _Container, x: TensorInfo, *, frozen: bool, init: InitSpec | None) -> tuple[Plan, TensorInfo]:
        order = self.topo(c)
        if order is None:
            raise _Failed
        top = c.id is None
        in_var = self.input_var(c)
        values: dict[str, TensorInfo] = {}
        if top:
            self.top_order, self.top_values = [m.id for m in order], values
        var_of: dict[str, str] = {}  # member id -> variable holding its output
        plans: list[Plan] = []
        steps: list[Step] = []
        failed: set[str] = set()
        for m in order:
            sources = list(c.preds[m.id])
            if m.op == "Input":
                values[m.id] = x
                var_of[m.id] = in_var
                continue
            if not sources:
                if top:
                    self.error(m.id, "nothing feeds this node: it is not connected to the input",
                               suggestion=f"connect an edge into {m.id}", kind="unconnected")
                    failed.add(m.id)
                    continue
                sources = [c.id]  # implicit: a block member with no inputs takes the block input
            if any(s in failed for s in sources):
                failed.add(m.id)
                continue
            inputs = [x if s == c.id else values[s] for s in sources]
            if top:
                self.top_inputs[m.id] = inputs
            in_vars = [in_var if s == c.id else var_of[s] for s in sources]
            node_frozen = frozen or m.frozen
            node_init = m.init or init
            try:
                out, plan = self.eval_node(m, inputs, frozen=node_frozen, init=node_init)
            except _Failed:
                failed.add(m.id)
                continue
            values[m.id] = out
            if m.op == "Output":
                var_of[m.id] = in_vars[0]
                continue
            var_of[m.id] = m.id
            if plan is not None:
                plans.append(plan)
                steps.append(Step(var=m.id, kind="module", inputs=in_vars, shape=out.shape, target=plan.name))
            else:  # a merge: a function of its inputs, the op's params as keyword arguments
                rule = get_op(m.op).merge
                steps.append(Step(var=m.id, kind="merge", inputs=in_vars, shape=out.shape, op=m.op,
                                  kwargs={k: getattr(m.params, k) for k in rule.kwargs}))
        self.check_reach(c, order, failed)
        exit_id = self.exit_of(c, order)
        if failed or exit_id is None:
            raise _Failed
        out = values[exit_id]
        out_var = var_of[exit_id]
        name = self.by_id[c.id].module_name if c.id else self.g.name
        chain = self.is_chain(steps, in_var, out_var)
        if chain:
            return SeqPlan(name=name, node_id=c.id, items=plans, out_shape=out.shape, frozen=frozen), out
        dag = DagPlan(name=name, node_id=c.id, input_var=in_var, modules=plans, steps=steps, output_var=out_var,
                      out_shape=out.shape, frozen=frozen)
        return dag, out

    @staticmethod
    def is_chain(steps: list[Step], in_var: str, out_var: str) -> bool:
        prev = in_var
        for s in steps:
            if s.kind != "module" or s.inputs != [prev]:
                return False
            prev = s.var
        return prev == out_var

    def input_var(self, c: _Container) -> str:
        if c.id is None:
            return next(m.id for m in c.members if m.op == "Input")
        taken = {m.id for m in c.members}
        var = "x"
        while var in taken:
            var += "_"
        return var

    def check_reach(self, c: _Container, order: list[Any], failed: set[str]) -> None:
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
        while stack:
            for p in c.preds[stack.pop()]:
                if p not in useful and p != c.id:  # c.id: the block's own input
                    useful.add(p)
                    stack.append(p)
        unused = [m for m in order if m.id not in useful and m.id not in failed]
        for m in unused:
            self.error(m.id, f"its output is not used: no path leads from it to {where}",
                       suggestion=f"connect {m.id} toward {where}, or delete it", kind="unconnected")
        if unused and c.id is not None:
            raise _Failed  # once, not again for each copy of a repeated block

    def exit_of(self, c: _Container, order: list[Any]) -> str | None:
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

    def eval_node(self, m: Any, inputs: list[TensorInfo], *, frozen: bool, init: InitSpec | None
                  ) -> tuple[TensorInfo, Plan | None]:
        spec = get_op(m.op)
        n_in = len(inputs)
        if n_in < spec.min_inputs or n_in > spec.max_inputs:
            want = (f"exactly {spec.min_inputs}" if spec.min_inputs == spec.max_inputs
                    else f"{spec.min_inputs} to {spec.max_inputs}")
            self.error(m.id, f"{m.op} takes {want} input{'s' if spec.max_inputs > 1 else ''}, received {n_in}",
                       suggestion="join branches with an Add or Concat first" if n_in > spec.max_inputs else None,
                       kind="unconnected" if n_in < spec.min_inputs else "error")
            raise _Failed
        if m.op == "Block":
            return self.eval_block(m, inputs[0], frozen=frozen, init=init)
        if spec.dtype_in is not None:
            for t in inputs:
                if t.dtype != spec.dtype_in:
                    if spec.dtype_in == "int64":
                        self.error(m.id, f"{m.op} takes integer ids, received {t.dtype} values",
                                   suggestion="set the Input's dtype to int64")
                    else:
                        self.error(m.id, f"{m.op} takes float values, received {t.dtype} ids",
                                   suggestion="add an Embedding to turn ids into vectors")
                    raise _Failed
        try:
            inf = self.rule(spec, m, inputs)
        except NodeProblem as p:
            suggestion = p.suggestion.format(node=m.id) if p.suggestion else None
            fix = ({"node": m.id} | p.fix) if p.fix else None
            self.error(m.id, p.message, field=p.field, suggestion=suggestion, fix=fix)
            raise _Failed from None
        if inf.params > MAX_NODE_PARAMS:
            self.error(m.id, f"{inf.params:,} parameters in one layer is above the limit of {MAX_NODE_PARAMS:,}",
                       suggestion="use fewer channels or features")
            raise _Failed
        if numel(inf.out.shape) > MAX_ACTIVATION:
            self.error(m.id, f"output {fmt_shape(inf.out.shape)} has more than 2^31 elements per sample")
            raise _Failed
        self.record(m, inputs, inf, frozen=frozen)
        if spec.torch_class is None:
            return inf.out, None
        plan = LayerPlan(name=m.module_name, node_id=m.id, op=m.op, torch_class=spec.torch_class, args=inf.torch_args,
                         positional=spec.positional, in_shape=inputs[0].shape, out_shape=inf.out.shape,
                         frozen=frozen, init=init)
        return inf.out, plan

    def rule(self, spec: Any, m: Any, inputs: list[TensorInfo]) -> Any:
        """``spec.infer(m.params, inputs)``, or its result from the memo for this node and these inputs."""
        if self.memo is None:
            return spec.infer(m.params, inputs)
        key = (id(m), *inputs)  # the memo holds m, so its id stays its own while the entry lives
        hit = self.memo.rules.get(key)
        if hit is not None and hit[0] is m:
            return hit[1]
        inf = spec.infer(m.params, inputs)
        self.memo.rules.put(key, (m, inf))
        return inf

    def record(self, m: Any, inputs: list[TensorInfo], inf: Any, *, frozen: bool) -> None:
        r = self.acc[m.id]
        if r.first:
            r.first = False
            r.status = "ok"
            r.input_shapes = [list(t.shape) for t in inputs]
            r.output_shape = list(inf.out.shape)
            r.dtype = inf.out.dtype
            r.formula = inf.formula
            r.resolved = inf.resolved
        r.instances += 1
        r.params += inf.params
        r.trainable_params += 0 if frozen else inf.params
        r.frozen_params += inf.params if frozen else 0
        r.macs += inf.macs
        if m.op != "Output":  # the Output passes its input on: nothing new is stored
            r.activations += numel(inf.out.shape)

    def eval_block(self, b: Any, x: TensorInfo, *, frozen: bool, init: InitSpec | None) -> tuple[TensorInfo, Plan]:
        p = b.params
        c = self.containers[b.id]
        copies: list[Plan] = []
        x_in = x
        start = {n.id: (n.params, n.trainable_params, n.frozen_params, n.macs, n.activations)
                 for n in self._descendant_reports(b.id)}
        shortcut_params = shortcut_macs = shortcut_acts = 0
        for i in range(p.repeat):
            body, out = self.eval_container(c, x, frozen=frozen, init=init)
            plan: Plan = body
            if p.residual:
                shortcut, costs = self.shortcut(b, x, out, frozen=frozen, init=init)
                shortcut_params += costs[0]
                shortcut_macs += costs[1]
                shortcut_acts += costs[2]
                body.name = "body"
                plan = ResidualPlan(name=b.module_name, node_id=b.id, body=body, shortcut=shortcut,
                                    out_shape=out.shape, frozen=frozen)
            plan.name = str(i) if p.repeat > 1 else b.module_name
            copies.append(plan)
            x = out
        # the block's own report: its contents (all copies) plus any projection shortcut
        r = self.acc[b.id]
        totals = [0, 0, 0, 0, 0]
        for n in self._descendant_reports(b.id):
            before = start[n.id]
            now = (n.params, n.trainable_params, n.frozen_params, n.macs, n.activations)
            if self.by_id[n.id].parent == b.id:
                for k in range(5):
                    totals[k] += now[k] - before[k]
        r.status = "ok"
        r.instances += 1
        r.input_shapes = [list(x_in.shape)]
        r.output_shape = list(x.shape)
        r.dtype = x.dtype
        r.params += totals[0] + shortcut_params
        r.trainable_params += totals[1] + (0 if frozen else shortcut_params)
        r.frozen_params += totals[2] + (shortcut_params if frozen else 0)
        r.macs += totals[3] + shortcut_macs
        r.activations += totals[4] + shortcut_acts
        r.formula = [f"{p.repeat} × block: {fmt_shape(x_in.shape)} → {fmt_shape(x.shape)}"
                     + (" with a residual skip" if p.residual else "")]
        if p.repeat == 1:
            return x, copies[0]
        return x, SeqPlan(name=b.module_name, node_id=b.id, items=copies, out_shape=x.shape, frozen=frozen)

    def _descendant_reports(self, block_id: str) -> list[_Acc]:
        return [self.acc[m.id] for m in self.containers[block_id].members]

    def shortcut(self, b: Any, x: TensorInfo, y: TensorInfo, *, frozen: bool, init: InitSpec | None
                 ) -> tuple[Plan | None, tuple[int, int, int]]:
        """The residual's shortcut: None for the identity, else a projection (a 1×1 conv, or a
        linear layer for vectors, then a BatchNorm) whose sizes and costs are those layers' own
        catalog rules. Returns the plan and its (params, MACs, activations)."""
        mode = b.params.shortcut
        if x.shape == y.shape and mode != "projection":
            return None, (0, 0, 0)
        xs, ys = fmt_shape(x.shape), fmt_shape(y.shape)
        if mode == "identity":
            self.error(b.id, f"residual shapes differ {xs} vs {ys}", field="shortcut",
                       suggestion="set shortcut='projection'")
            raise _Failed
        if len(x.shape) != len(y.shape) or not 1 <= len(x.shape) <= 3:
            self.error(b.id, f"cannot project the residual input {xs} onto the output {ys}: ranks differ",
                       field="shortcut", suggestion="make the block keep the rank of its input")
            raise _Failed
        rank = len(x.shape)
        if rank == 1:
            proj_name, proj_op = "proj", "Linear"
            proj_params: dict[str, Any] = {"out_features": y.shape[0], "bias": False}
        else:
            strides = []
            for a, (si, so) in enumerate(zip(x.shape[1:], y.shape[1:])):
                s = next((s for s in range(1, si + 1) if -(-si // s) == so), None)
                if s is None:
                    self.error(b.id, f"cannot project {xs} onto {ys} with a strided 1×1 convolution "
                               f"(axis {a + 1}: {si} → {so})", field="shortcut",
                               suggestion="make the block's output size a division of its input size")
                    raise _Failed
                strides.append(s)
            proj_name, proj_op = "conv", "Conv2d" if rank == 3 else "Conv1d"
            stride = strides[0] if len(set(strides)) == 1 else tuple(strides)
            proj_params = {"out_channels": y.shape[0], "kernel_size": 1, "stride": stride, "bias": False}
        norm_op = "BatchNorm2d" if rank == 3 else "BatchNorm1d"
        items: list[Plan] = []
        params = macs = acts = 0
        t = x
        for name, op, op_params in ((proj_name, proj_op, proj_params), ("bn", norm_op, {})):
            spec = get_op(op)
            inf = spec.infer(spec.params_model.model_validate(op_params), [t])
            items.append(LayerPlan(name, None, op, spec.torch_class, inf.torch_args, spec.positional, t.shape,
                                   inf.out.shape, frozen, init))
            params, macs, acts = params + inf.params, macs + inf.macs, acts + numel(inf.out.shape)
            t = inf.out
        plan = SeqPlan(name="shortcut", node_id=None, items=items, out_shape=y.shape, frozen=frozen)
        return plan, (params, macs, acts)

    # -- totals ------------------------------------------------------------------------------

    def finish(self, out: TensorInfo | None) -> dict[str, Any]:
        return self.summary(out) | {"nodes": [a.to_dict() for a in self.acc.values()]}

    def summary(self, out: TensorInfo | None) -> dict[str, Any]:
        """The report but its nodes."""
        by_id = self.by_id
        top = [a for a in self.acc.values() if (n := by_id.get(a.id)) is not None and n.parent is None]
        sums = {k: sum(map(attrgetter(k), top)) for k in _SUMMED}
        state = OPTIMIZER_STATE.get(self.optimizer, 2)
        b = BYTES_PER_ELEMENT
        mem = {
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "weights_bytes": sums["params"] * b,
            "gradients_bytes": sums["trainable_params"] * b,
            "optimizer_bytes": state * sums["trainable_params"] * b,
            "activations_bytes": self.batch_size * sums["activations"] * b,
        }
        mem["total_bytes"] = sum(v for k, v in mem.items() if k.endswith("_bytes"))
        inp = next((n for n in self.g.nodes if n.op == "Input"), None)
        valid = not self.errors and out is not None
        return {
            "format": "layerlab.report/1",
            "valid": valid,
            "input_shape": list(inp.params.shape) if inp is not None else None,
            "input_dtype": inp.params.dtype if inp is not None else None,
            "output_shape": list(out.shape) if out is not None and valid else None,
            "totals": sums | {"memory": mem},
            "errors": self.errors,
        }


__all__ = ["FORMAT", "Analysis", "NodeReport", "OptimizerName", "Report", "Totals", "analyze", "infer", "report_json"]
