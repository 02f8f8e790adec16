"""The walk: container by container (the top level, then each Block's children, once per copy
of a repeated block), every node sized by its catalog entry, every error collected instead of
stopping at the first; it produces the report and the :class:`~layerlab.plan.ModelPlan` the
compiler and the code generator render."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from ..graph import Graph, InitSpec
from ..memo import ShapeMemo
from ..ops import NodeProblem, TensorInfo, get_op
from ..ops.base import MAX_ACTIVATION, MAX_NODE_PARAMS, fmt_shape, numel
from ..plan import DagPlan, LayerPlan, ModelPlan, ParameterPlan, Plan, ResidualPlan, SeqPlan, Step
from .ledger import Failed, Ledger, NodeAccount
from .report import Report
from .residual import shortcut
from .structure import Container, Structure


@dataclass
class Analysis:
    report: Report
    plan: ModelPlan | None  # None when the graph has errors
    graph: Graph | None = None


@dataclass
class Walked:
    """What the walk of a valid graph leaves for the next report of it (``Walk.walk_again``): its
    nodes and edges as validated, its containers and accounts, and at the top level each member's
    inputs and output in walk order. Nothing in it changes after the walk."""

    nodes: list[Any]
    edges: list[Any]
    containers: dict[str | None, Container]
    acc: dict[str, NodeAccount]
    order: list[str]
    inputs: dict[str, list[TensorInfo]]
    values: dict[str, TensorInfo]


class Walk:
    def __init__(self, graph: Graph, *, batch_size: int, optimizer: str, memo: ShapeMemo | None = None,
                 plans: bool = True) -> None:
        self.g = graph
        self.plans = plans  # False: a report only (``run_json``), no ModelPlan to build
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.memo = memo
        self.ledger = Ledger()
        self.error = self.ledger.error
        self.structure = Structure(graph, self.ledger)
        # the top level's walk order and each member's inputs and output (kept for walk_again)
        self.top_order: list[str] = []
        self.top_inputs: dict[str, list[TensorInfo]] = {}
        self.top_values: dict[str, TensorInfo] = {}

    def run(self) -> Analysis:
        root, out = self.walk()
        plan = None
        if root is not None and not self.ledger.errors:
            inp = next(n for n in self.g.nodes if n.op == "Input")
            plan = ModelPlan(root=root, input_shape=tuple(inp.params.shape), input_dtype=inp.params.dtype,
                             name=self.g.name)
        return Analysis(self.report(out), plan, self.g)

    def walk(self) -> tuple[Plan | None, TensorInfo | None]:
        self.structure.check()
        if self.ledger.errors:
            return None, None
        inp = next(n for n in self.g.nodes if n.op == "Input")
        try:
            return self.eval_container(self.structure.containers[None], self.start_input(inp), frozen=False,
                                       init=None)
        except Failed:
            return None, None

    def run_json(self) -> bytes:
        """The report as JSON. With a memo holding the walk of a graph with the same node ids, try
        ``walk_again`` first; when it does not apply, walk the whole graph."""
        key = tuple(map(attrgetter("id"), self.g.nodes))
        prev = self.memo.walks.get(key) if self.memo is not None else None
        if prev is not None:
            again = Walk(self.g, batch_size=self.batch_size, optimizer=self.optimizer, memo=self.memo,
                         plans=self.plans)
            out = again.walk_again(prev)
            if out is not None:
                return again.finish_json(out, key)
        return self.finish_json(self.walk()[1], key)

    def finish_json(self, out: TensorInfo | None, key: tuple[str, ...]) -> bytes:
        if self.memo is not None and out is not None and not self.ledger.errors:
            self.memo.walks.put(key, Walked(nodes=self.g.nodes, edges=self.g.edges,
                                            containers=self.structure.containers, acc=self.ledger.acc,
                                            order=self.top_order, inputs=self.top_inputs, values=self.top_values))
        return self.ledger.report_json(self.g, self.structure.by_id, out, batch_size=self.batch_size,
                                       optimizer=self.optimizer)

    def walk_again(self, prev: Walked) -> TensorInfo | None:
        """The walk of a graph that is ``prev``'s graph with some nodes' settings changed (params,
        freezing, init, label, position), not its structure: only the top-level members whose own
        node, whose block's contents, or whose inputs changed are sized again; the others keep their
        accounts. None when that does not apply (the structure or the Input changed, or an error
        appeared: the full walk then reports it)."""
        g = self.g
        if g.edges is not prev.edges and (len(g.edges) != len(prev.edges)
                                          or any(a is not b for a, b in zip(g.edges, prev.edges))):
            return None
        by_id = self.structure.by_id = {n.id: n for n in g.nodes}  # the ids are unique: prev's graph was valid
        dirty: set[str] = set()
        for new, old in zip(g.nodes, prev.nodes):  # the same ids in the same order (the memo's key)
            if new is old:
                continue
            if new.op != old.op or new.parent != old.parent or new.name != old.name or new.op == "Input":
                return None
            top = new
            while top.parent is not None:
                top = by_id[top.parent]
            dirty.add(top.id)
        self.structure.containers = prev.containers  # their members are read by id only
        self.ledger.acc = dict(prev.acc)  # accounts of unchanged members are shared, never written
        self.top_order = prev.order
        self.top_inputs = dict(prev.inputs)
        self.top_values = values = dict(prev.values)
        preds = self.structure.containers[None].preds
        for mid in prev.order:
            m = by_id[mid]
            if m.op == "Input":
                continue
            inputs = [values[s] for s in preds[mid]]
            if mid not in dirty and inputs == prev.inputs[mid]:
                continue
            for n in self.inside(m):
                self.ledger.acc[n.id] = NodeAccount(id=n.id, op=n.op, frozen=self.structure.is_frozen(n))
            try:
                values[mid], _ = self.eval_node(m, inputs, frozen=m.frozen, init=m.init)
            except Failed:
                return None
            self.top_inputs[mid] = inputs
        if self.ledger.errors:
            return None
        return values[next(i for i in reversed(prev.order) if by_id[i].op == "Output")]

    def inside(self, m: Any) -> list[Any]:
        """``m`` and, for a Block, everything nested in it."""
        found, stack = [], [m]
        while stack:
            n = stack.pop()
            found.append(n)
            if n.op == "Block":
                stack.extend(self.structure.by_id[c.id] for c in self.structure.containers[n.id].members)
        return found

    def report(self, out: TensorInfo | None) -> Report:
        return self.ledger.report(self.g, self.structure.by_id, out, batch_size=self.batch_size,
                                  optimizer=self.optimizer)

    def start_input(self, inp: Any) -> TensorInfo:
        try:
            inferred = get_op("Input").infer(inp.params, [])
        except NodeProblem as p:  # e.g. more elements than an activation may hold: a report error
            self.error(inp.id, p.message, field=p.field, suggestion=p.suggestion)
            raise Failed from None
        self.ledger.record(inp, [], inferred, frozen=False)
        return inferred.out

    def eval_container(self, c: Container, x: TensorInfo, *, frozen: bool, init: InitSpec | None
                       ) -> tuple[Plan | None, TensorInfo]:
        order = self.structure.topo(c)
        if order is None:
            raise Failed
        top = c.id is None
        in_var = self.input_var(c)
        values: dict[str, TensorInfo] = {}
        if top:
            self.top_order, self.top_values = [m.id for m in order], values
        var_of: dict[str, str] = {}  # member id -> variable holding its output
        plans: list[Plan] = []
        steps: list[Step] = []
        failed: set[str] = set()
        preds, cid, eval_node, top_inputs = c.preds, c.id, self.eval_node, self.top_inputs
        for m in order:
            mid = m.id
            sources = preds[mid]
            if m.op == "Input":
                values[mid] = x
                var_of[mid] = in_var
                continue
            if not sources:
                if top:
                    self.error(mid, "nothing feeds this node: it is not connected to the input",
                               suggestion=f"connect an edge into {mid}", kind="unconnected")
                    failed.add(mid)
                    continue
                sources = [cid]  # implicit: a block member with no inputs takes the block input
            if failed and any(s in failed for s in sources):
                failed.add(mid)
                continue
            inputs = [x if s == cid else values[s] for s in sources]
            if top:
                top_inputs[mid] = inputs
            try:
                out, plan = eval_node(m, inputs, frozen=frozen or m.frozen, init=m.init or init)
            except Failed:
                failed.add(mid)
                continue
            values[mid] = out
            if not self.plans:
                continue
            in_vars = [in_var if s == cid else var_of[s] for s in sources]
            if m.op == "Output":
                var_of[mid] = in_vars[0]
                continue
            var_of[mid] = mid
            if plan is not None:
                plans.append(plan)
                if isinstance(plan, ParameterPlan):
                    steps.append(Step(var=mid, kind="parameter", inputs=in_vars, shape=out.shape, target=plan.name,
                                      op=m.op))
                else:
                    steps.append(Step(var=mid, kind="module", inputs=in_vars, shape=out.shape, target=plan.name))
            else:  # a merge: a function of its inputs, the op's params as keyword arguments
                rule = get_op(m.op).merge
                steps.append(Step(var=mid, kind="merge", inputs=in_vars, shape=out.shape, op=m.op,
                                  kwargs={k: getattr(m.params, k) for k in rule.kwargs}))
        self.structure.check_reach(c, order, failed)
        exit_id = self.structure.exit_of(c, order)
        if failed or exit_id is None:
            raise Failed
        out = values[exit_id]
        if not self.plans:
            return None, out
        out_var = var_of[exit_id]
        name = self.structure.by_id[c.id].module_name if c.id else self.g.name
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

    def input_var(self, c: Container) -> str:
        if c.id is None:
            return next(m.id for m in c.members if m.op == "Input")
        taken = {m.id for m in c.members}
        var = "x"
        while var in taken:
            var += "_"
        return var

    def eval_node(self, m: Any, inputs: list[TensorInfo], *, frozen: bool, init: InitSpec | None
                  ) -> tuple[TensorInfo, Plan | None]:
        spec = get_op(m.op)
        n_in = len(inputs)
        if not spec.min_inputs <= n_in <= spec.max_inputs:
            want = (f"exactly {spec.min_inputs}" if spec.min_inputs == spec.max_inputs
                    else f"{spec.min_inputs} to {spec.max_inputs}")
            self.error(m.id, f"{m.op} takes {want} input{'s' if spec.max_inputs > 1 else ''}, received {n_in}",
                       suggestion="join branches with an Add or Concat first" if n_in > spec.max_inputs else None,
                       kind="unconnected" if n_in < spec.min_inputs else "error")
            raise Failed
        if m.op == "Block":
            return self.eval_block(m, inputs[0], frozen=frozen, init=init)
        if (dtype_in := spec.dtype_in) is not None:
            for t in inputs:
                if t.dtype != dtype_in:
                    if dtype_in == "int64":
                        self.error(m.id, f"{m.op} takes integer ids, received {t.dtype} values",
                                   suggestion="set the Input's dtype to int64")
                    else:
                        self.error(m.id, f"{m.op} takes float values, received {t.dtype} ids",
                                   suggestion="add an Embedding to turn ids into vectors")
                    raise Failed
        try:
            inf = self.rule(spec, m, inputs)
        except NodeProblem as p:
            suggestion = p.suggestion.format(node=m.id) if p.suggestion else None
            fix = ({"node": m.id} | p.fix) if p.fix else None
            self.error(m.id, p.message, field=p.field, suggestion=suggestion, fix=fix)
            raise Failed from None
        if inf.params > MAX_NODE_PARAMS:
            self.error(m.id, f"{inf.params:,} parameters in one layer is above the limit of {MAX_NODE_PARAMS:,}",
                       suggestion="use fewer channels or features")
            raise Failed
        size = numel(inf.out.shape)
        if size > MAX_ACTIVATION:
            self.error(m.id, f"output {fmt_shape(inf.out.shape)} has more than 2^31 elements per sample")
            raise Failed
        self.ledger.record(m, inputs, inf, frozen=frozen, size=size)
        if spec.torch_class is None or not self.plans:
            return inf.out, None
        if spec.parameter_form is not None and m.params.form == "parameter":  # self.<name>, used in forward
            return inf.out, ParameterPlan(name=m.module_name, node_id=m.id, op=m.op,
                                          shape=spec.parameter_shape(inf.torch_args), in_shape=inputs[0].shape,
                                          out_shape=inf.out.shape, frozen=frozen)
        plan = LayerPlan(name=m.module_name, node_id=m.id, op=m.op, torch_class=spec.torch_class, args=inf.torch_args,
                         positional=spec.positional, in_shape=inputs[0].shape, out_shape=inf.out.shape,
                         frozen=frozen, init=init)
        return inf.out, plan

    def rule(self, spec: Any, m: Any, inputs: list[TensorInfo]) -> Any:
        """``spec.infer(m.params, inputs)``, or its result from the memo for this node and these inputs."""
        if self.memo is None:
            return spec.infer(m.params, inputs)
        key = (id(m), *inputs)  # the memo holds m, so its id stays its own while the entry lives
        rules = self.memo.rules
        hit = rules.get(key)
        if hit is not None and hit[0] is m:
            return hit[1]
        inf = spec.infer(m.params, inputs)
        rules.put(key, (m, inf), new=hit is None)
        return inf

    def eval_block(self, b: Any, x: TensorInfo, *, frozen: bool, init: InitSpec | None
                   ) -> tuple[TensorInfo, Plan | None]:
        p = b.params
        c = self.structure.containers[b.id]
        copies: list[Plan] = []
        x_in = x
        before = self.ledger.costs([m.id for m in c.members])
        shortcut_params = shortcut_macs = shortcut_acts = 0
        for i in range(p.repeat):
            body, out = self.eval_container(c, x, frozen=frozen, init=init)
            plan = body
            if p.residual:
                skip, costs = shortcut(self.ledger, b, x, out, frozen=frozen, init=init, plans=self.plans)
                shortcut_params += costs[0]
                shortcut_macs += costs[1]
                shortcut_acts += costs[2]
                if body is not None:
                    body.name = "body"
                    plan = ResidualPlan(name=b.module_name, node_id=b.id, body=body, shortcut=skip,
                                        out_shape=out.shape, frozen=frozen)
            if plan is not None:
                plan.name = str(i) if p.repeat > 1 else b.module_name
                copies.append(plan)
            x = out
        # the block's own report: its contents (all copies) plus any projection shortcut
        self.ledger.record_block(b, before, x_in, x, (shortcut_params, shortcut_macs, shortcut_acts), frozen=frozen)
        if not self.plans:
            return x, None
        if p.repeat == 1:
            return x, copies[0]
        return x, SeqPlan(name=b.module_name, node_id=b.id, items=copies, out_shape=x.shape, frozen=frozen)
