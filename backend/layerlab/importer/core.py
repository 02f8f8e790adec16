"""The import itself: trace, screen, probe shapes, translate each call, assemble, then check the
result against the original module (see the package docstring)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from .. import modules
from ..graph import Graph
from ..ops import TorchFunction, get_op
from ..plan import iter_layers
from ..shapes import analyze
from .assemble import INPUT_KEY, Node, assemble
from .errors import ModuleImportError, UnsupportedModuleError
from .patterns import (
    RawUse,
    as_flatten,
    as_select,
    as_unflatten,
    class_token_use,
    is_last_step,
    positions_use,
)
from .structure import Structure
from .trace import SHAPE, FunctionTable, Shapes, Tracer, catalog_classes, container_of, live_nodes, qualname


@dataclass(frozen=True)
class _Size:
    """``x.size(d)`` / ``x.shape[d]`` (dim None: the whole size), or arithmetic on them
    (``c // groups``: ``derived``, ``batch`` when it involves the batch size); only for view/reshape
    arguments, whose result the probe's shapes give."""

    dim: int | None
    derived: bool = False
    batch: bool = False


def from_module(
    module: nn.Module,
    input_shape: Sequence[int],
    *,
    input_dtype: str = "float32",
    name: str | None = None,
) -> Graph:
    """The LayerLab graph of ``module`` for per-sample inputs of ``input_shape`` (no batch dim).

    Raises :class:`UnsupportedModuleError` for a submodule or function with no LayerLab op, and
    :class:`ModuleImportError` for a structure a graph cannot hold (shared weights, a block with two
    inputs, an unused layer), each naming the module path.
    """
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
        raise ValueError(f"input_shape must be positive ints per sample (no batch dim); received {input_shape!r}")
    if input_dtype not in ("float32", "int64"):
        raise ValueError(f"input_dtype must be 'float32' or 'int64'; received {input_dtype!r}")
    return _Importer(module, shape, input_dtype, name or type(module).__name__).run()


class _Importer:
    """One import: trace, screen, probe shapes, translate, assemble, then check against the module."""

    def __init__(self, module: nn.Module, shape: tuple[int, ...], dtype: str, name: str) -> None:
        self.module = module
        self.shape = shape
        self.dtype = dtype
        self.name = name
        self.leaves = catalog_classes()
        self.functions = FunctionTable()
        self.nodes: dict[str, Node] = {}  # key → node, in forward order
        self.value: dict[fx.Node, str] = {}  # fx value → producer key
        self.sizes: dict[fx.Node, _Size] = {}
        self.tuples: dict[fx.Node, str] = {}  # a module call returning (output, extra) → its node key
        self.live: set[fx.Node] = set()  # size helpers, for view/reshape arguments only
        self.out_key: str = INPUT_KEY
        self.paths: dict[str, str] = {}  # graph node id → module path, for messages
        self.forms: dict[fx.Node, RawUse] = {}  # a call using a raw parameter as an op's parameter form
        self.form_helpers: set[fx.Node] = set()  # the parameter's get_attr (and expand) behind those calls

    # -- 1. trace ----------------------------------------------------------------------------

    def run(self) -> Graph:
        if type(self.module) in self.leaves:
            raise ModuleImportError("", f"the root is a bare nn.{type(self.module).__name__}; wrap it in "
                                        "nn.Sequential so it has a name in the graph")
        gm = self.trace()
        live = self.live = live_nodes(gm.graph)
        self.find_parameter_forms(gm, live)
        self.screen(gm, live)  # before running it: a layer LayerLab lacks may be why it would fail
        self.propagate_shapes(gm)
        self.translate(gm, live)
        self.hoist_merges()
        self.check_weights_used()
        structure = Structure(self.module, self.nodes, self.out_key)  # residual blocks and repeats back
        self.out_key = structure.run()
        data, self.paths = assemble(
            list(self.nodes.values()), out_key=self.out_key, shape=self.shape, dtype=self.dtype, name=self.name,
            type_at=lambda path: self.type_at(structure.origin.get(_split(path), path)), block_params=structure.params,
        )
        graph = self.validate(data)
        self.compare(graph)
        return graph

    def trace(self) -> fx.GraphModule:
        tracer = Tracer(self.leaves)
        try:
            graph = tracer.trace(self.module)
        except ModuleImportError:
            raise
        except Exception as e:
            path = next(reversed(tracer.module_stack.values()))[0] if tracer.module_stack else ""
            raise UnsupportedModuleError(
                path, self.type_at(path), f"{self.type_at(path)}.forward() cannot be traced by torch.fx: {e}"
            ) from e
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        for extra in placeholders[1:]:
            if not extra.args:  # no default value: the caller must pass it
                raise ModuleImportError("", f"forward() takes more than one input ({extra.target!r}); "
                                            "a LayerLab graph has one Input")
        return fx.GraphModule(self.module, graph, class_name=type(self.module).__name__)

    def type_at(self, path: str) -> str:
        try:
            return type(self.module.get_submodule(path)).__name__
        except AttributeError:
            return "?"

    def propagate_shapes(self, gm: fx.GraphModule) -> None:
        """Run once on a batch of 2 to learn every value's shape (eval mode: no running-stat update)."""
        modes = {m: m.training for m in self.module.modules()}
        tensors = [*self.module.parameters(), *self.module.buffers()]
        device = tensors[0].device if tensors else torch.device("cpu")  # meta works too: no data needed
        floats = [t.dtype for t in tensors if t.is_floating_point()]
        dtype = torch.int64 if self.dtype == "int64" else (floats[0] if floats else torch.float32)
        x = torch.zeros((2, *self.shape), dtype=dtype, device=device)
        probe = Shapes(gm)
        try:
            self.module.eval()
            with torch.no_grad():
                probe.run(x)
        except Exception as e:
            n = probe.current
            path = str(n.target) if n is not None and n.op == "call_module" else (container_of(n) if n else "")
            reason = str(e).strip().split("\n\n")[0]  # fx appends the whole graph; the cause comes first
            raise ModuleImportError(
                path, f"forward() fails on an input of shape {tuple(x.shape)} ({self.dtype}): {reason}"
            ) from e
        finally:
            for m, mode in modes.items():
                m.training = mode

    # -- 2. translate the fx nodes -----------------------------------------------------------

    def find_parameter_forms(self, gm: fx.GraphModule, live: set[fx.Node]) -> None:
        """Raw parameters used as an op's parameter form writes them (ops/base.py ParameterForm):
        ``torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1)`` is a ClassToken and
        ``x + self.pos_embedding`` a PositionalEmbedding, held as the same raw parameters, so the
        state_dict keys stay the original's. A parameter used any other way is left to ``screen``."""
        for n in gm.graph.nodes:
            if n.op != "get_attr" or n not in live:
                continue
            try:
                param = self.module.get_parameter(str(n.target))
            except AttributeError:
                continue  # a buffer or a plain tensor
            users = [u for u in n.users if u in live]
            found = class_token_use(users[0], live) if len(users) == 1 else None
            if found is None and len(users) == 1:
                found = positions_use(n, users[0], live)
            if found is not None:
                call, op, x, helpers = found
                sliced = next((h for h in helpers if h.target is operator.getitem), None)
                self.forms[call] = RawUse(op, str(n.target), param, x, sliced)
                self.form_helpers |= {n, *helpers}

    def screen(self, gm: fx.GraphModule, live: set[fx.Node]) -> None:
        """Every layer and function forward() uses must have an op; containers must run once."""
        for n in gm.graph.nodes:
            if n not in live or n.op in ("placeholder", "output") or n in self.form_helpers:
                continue
            where = container_of(n)
            for key, (qual, _) in n.meta.get("nn_module_stack", {}).items():
                if "@" in key and qual != n.target:
                    raise ModuleImportError(
                        qual, f"{self.type_at(qual)} is called more than once in forward(); a Block runs once",
                    )
            if n.op == "get_attr":
                attr = str(n.target).removeprefix(f"{where}.") if where else str(n.target)
                raise UnsupportedModuleError(
                    where, self.type_at(where),
                    f"forward() uses the attribute {attr!r} directly; only layers from the catalog "
                    "hold weights in a LayerLab graph (and raw parameters used as a class token, "
                    f"torch.cat([self.{attr}.expand(b, -1, -1), x], dim=1), or as positions, x + self.{attr})",
                )
            if n.op == "call_module":
                m = self.module.get_submodule(str(n.target))
                if type(m) not in self.leaves:
                    raise UnsupportedModuleError(
                        str(n.target), type(m).__name__,
                        f"nn.{type(m).__name__} has no LayerLab op; received {_short(m)}",
                    )
            elif self.functions.resolve(n) is None:
                qual = qualname(n)
                raise UnsupportedModuleError(where, qual, self.unsupported(f"{qual}()", where))

    def translate(self, gm: fx.GraphModule, live: set[fx.Node]) -> None:
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        called: dict[str, int] = {}
        for n in gm.graph.nodes:
            if n not in live or n in self.form_helpers:
                continue
            if n.op == "placeholder":
                if n is placeholders[0]:
                    self.value[n] = INPUT_KEY
            elif n.op == "output":
                out = n.args[0]
                if not isinstance(out, fx.Node) or out not in self.value:
                    raise ModuleImportError("", "forward() must return one tensor; received "
                                                f"{type(out).__name__ if not isinstance(out, fx.Node) else out.name}")
                self.out_key = self.value[out]
            elif n.op == "call_module":
                self.module_call(n, called)
            else:
                self.function_call(n)

    def hoist_merges(self) -> None:
        """A merge whose inputs all come from outside its submodule moves out to where they meet:
        DenseNet's layer starts with ``torch.cat(inputs, 1)`` of tensors from outside it, and a Block
        takes one tensor. A merge holds no weights, so the state_dict keys stay the same."""
        where = {key: node.container for key, node in self.nodes.items()} | {INPUT_KEY: ()}
        for node in self.nodes.values():
            if node.module is not None or get_op(node.op).merge is None:
                continue
            c = node.container
            while c and all(where[k][: len(c)] != c for k in node.inputs):
                c = c[:-1]
            node.container = where[node.key] = c

    def module_call(self, n: fx.Node, called: dict[str, int]) -> None:
        path = str(n.target)
        m = self.module.get_submodule(path)
        op = self.leaves[type(m)]
        count = called.get(path, 0)
        called[path] = count + 1
        has_state = any(True for _ in m.parameters()) or any(True for _ in m.buffers())
        if count and has_state:
            raise ModuleImportError(
                path, f"{type(m).__name__} is called {count + 1} times in forward(); a graph node has its own "
                      "weights, so shared weights cannot be imported",
            )
        parent, _, local = path.rpartition(".")
        params = self.params_of(op, m, path)
        spec = get_op(op)
        where = parent
        extra = {k: v for k, v in n.kwargs.items() if k not in spec.call_ignored and v is not None}
        if extra or len(n.args) != spec.call_repeats or any(a is not n.args[0] for a in n.args):
            want = "its input" if spec.call_repeats == 1 else f"its input {spec.call_repeats} times (self-attention)"
            raise ModuleImportError(path, f"{type(m).__name__} must be called with {want}; received "
                                          f"{len(n.args)} arguments and {dict(n.kwargs)}")
        as_tuple = spec.tuple_output and type(m) is not getattr(modules, spec.torch_class or "", None)
        self.add(n, op, params, local=local, path=path if not count else f"{path} (call {count + 1})",
                 container=_split(parent), module=None if count else m, inputs=[self.tensor(n.args[0], n, where)],
                 as_tuple=as_tuple)

    def params_of(self, op: str, m: nn.Module, path: str) -> dict[str, Any]:
        spec = get_op(op)
        try:
            raw = spec.from_torch(m)
        except ValueError as e:
            raise UnsupportedModuleError(path, type(m).__name__,
                                         f"LayerLab's {op} cannot express it: {e}; received {_short(m)}") from e
        return _tidy(op, raw, path)

    def function_call(self, n: fx.Node) -> None:
        where = container_of(n)
        if n in self.forms:
            self.parameter_call(n, self.forms[n], where)
            return
        what = self.functions.resolve(n)
        on_sizes = any(isinstance(a, fx.Node) and a in self.sizes for a in n.args)
        arith = what == "arith" or isinstance(what, tuple) and what[1].key in ("add", "mul")
        if n.op == "call_function" and arith and on_sizes:
            self.size_arith(n)
        elif what in ("size", "getattr", "getitem"):
            self.size_helper(n, what, where)
        elif what == "contiguous":
            self.value[n] = self.tensor(n.args[0], n, where)
        elif what in ("view", "reshape"):
            self.reshape(n, what, where)
        elif isinstance(what, tuple):
            op, fn = what
            if get_op(op).merge is not None:
                self.merge(n, op, fn, where)
            else:
                self.function_op(n, op, fn, where)

    def parameter_call(self, n: fx.Node, use: RawUse, where: str) -> None:
        """An op in its parameter form: a node named like the parameter, in the module that holds it."""
        owner, _, local = use.path.rpartition(".")
        if where != owner:
            raise ModuleImportError(use.path, f"the parameter is used in the forward() of {where or 'the root'}, "
                                              f"not of {owner or 'the root'} that holds it; a Block's forward uses "
                                              "its own parameters")
        x_shape = use.x.meta.get(SHAPE, ())
        spec = get_op(use.op)
        if len(x_shape) != 3:
            raise UnsupportedModuleError(use.path, "Parameter", f"{n.name}: {use.op} takes a sequence (B, L, D); "
                                                                f"received {tuple(x_shape)}")
        want = spec.parameter_shape({"num_positions": x_shape[1], "embedding_dim": x_shape[2]})
        if use.sliced is not None and tuple(use.sliced.meta.get(SHAPE, ())) != tuple(use.param.shape):
            raise UnsupportedModuleError(use.path, "Parameter", f"{n.name}: the slice takes "
                                                                f"{tuple(use.sliced.meta.get(SHAPE, ()))} of the table "
                                                                f"{tuple(use.param.shape)}; LayerLab adds the whole "
                                                                "table, one vector per step")
        if tuple(use.param.shape) != want:
            raise UnsupportedModuleError(use.path, "Parameter", f"LayerLab's {use.op} holds a parameter of shape "
                                                                f"{want} for an input {tuple(x_shape)}; received "
                                                                f"{tuple(use.param.shape)}")
        self.add(n, use.op, {"form": "parameter"}, local=local, path=use.path, container=_split(owner),
                 inputs=[self.tensor(use.x, n, where)], parameter=use.param)

    def unsupported(self, what: str, where: str) -> str:
        known = ", ".join(sorted({*self.functions.keys(), "view", "reshape"}))
        inside = f" in {self.type_at(where)}.forward()" if where else " in forward()"
        return f"{what}{inside} has no LayerLab op (supported functions: {known})"

    def bind(self, n: fx.Node, fn: TorchFunction, where: str) -> dict[str, Any]:
        """The call's arguments by name (defaults filled in), checked against the function form."""
        args = dict(fn.defaults)
        positional = list(n.args)
        if fn.varargs is not None:  # x.permute(0, 2, 1): the rest of the positional arguments as one
            at = fn.args.index(fn.varargs)
            if len(positional) > at:
                positional = [*positional[:at], tuple(positional[at:])]
        if len(positional) > len(fn.args):
            raise UnsupportedModuleError(where, fn.key, f"{n.name}: too many arguments to {fn.key}")
        args.update(zip(fn.args, positional))
        for k, v in n.kwargs.items():
            if k not in fn.args:
                raise UnsupportedModuleError(where, fn.key, f"{n.name}: {fn.key}() argument {k!r} has no LayerLab param")
            args[k] = v
        for k, must in fn.must_be.items():
            if k in args and args[k] != must:
                raise UnsupportedModuleError(where, fn.key, f"{n.name}: {fn.key}({k}={args[k]!r}) has no LayerLab op")
        for k in fn.required:
            if args.get(k) is None:
                raise UnsupportedModuleError(where, fn.key, f"{n.name}: {fn.key} without {k}; pass {k}=1")
        return args

    def merge(self, n: fx.Node, op: str, fn: TorchFunction, where: str) -> None:
        """A merge op's function: ``a + b`` (two tensors) or ``torch.cat([a, b], dim)`` (a list)."""
        args = self.bind(n, fn, where)
        at = f"{n.name} in {where or 'forward()'}"
        if get_op(op).merge.infix is not None:
            first, second = fn.args[:2]
            if first not in args or second not in args:
                raise UnsupportedModuleError(where, fn.key, f"{n.name}: {fn.key} takes two tensors; "
                                                            f"received args {n.args} {n.kwargs}")
            inputs = [self.tensor(args[first], n, where), self.tensor(args[second], n, where)]
            params: dict[str, Any] = {}
        else:
            tensors = args.get(fn.args[0])
            params = {k: args[k] for k in fn.params}
            if not isinstance(tensors, (list, tuple)) or not all(isinstance(v, int) for v in params.values()):
                raise UnsupportedModuleError(where, fn.key, f"{n.name}: {fn.key} needs a list of tensors and "
                                                            f"int {', '.join(fn.params)}")
            inputs = [self.tensor(t, n, where) for t in tensors]
            if len(inputs) == 1:
                self.value[n] = inputs[0]
                return
        self.add(n, op, params, local=fn.key, path=at, container=_split(where), inputs=inputs)

    def function_op(self, n: fx.Node, op: str, fn: TorchFunction, where: str) -> None:
        """A function with a layer op: ``F.relu(x)`` → ReLU, its arguments read as the op's params."""
        args = self.bind(n, fn, where)
        src = self.tensor(args["input"], n, where)
        if fn.identity_when and all(args.get(k) == v for k, v in fn.identity_when.items()):
            self.value[n] = src
            return
        shape = args["input"].meta.get(SHAPE, ()) if isinstance(args["input"], fx.Node) else ()
        params = get_op(op).params_from_call(fn, args, tuple(shape[1:]))
        if "stride" in params and params["stride"] is None:
            del params["stride"]
        at = f"{n.name} in {where or 'forward()'}"
        self.add(n, op, _tidy(op, params, at), local=fn.key, path=at, container=_split(where), inputs=[src])

    def tensor(self, arg: Any, n: fx.Node, where: str) -> str:
        """The producer key of a tensor argument; anything else is an error."""
        if isinstance(arg, fx.Node) and arg in self.value:
            return self.value[arg]
        what = f"the size helper {arg.name}" if isinstance(arg, fx.Node) else repr(arg)
        raise UnsupportedModuleError(
            where, qualname(n), f"{n.name} takes {what} where LayerLab needs a tensor from a layer",
        )

    def size_helper(self, n: fx.Node, fn: str, where: str) -> None:
        src = n.args[0]
        if fn == "size" and isinstance(src, fx.Node) and src in self.value:
            dim = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim")
            self.sizes[n] = _Size(dim if isinstance(dim, int) else None)
            return
        if fn == "getattr" and isinstance(src, fx.Node) and src in self.value and n.args[1] == "shape":
            self.sizes[n] = _Size(None)
            return
        whole = isinstance(src, fx.Node) and self.sizes.get(src) == _Size(None)
        if fn == "getitem" and whole and isinstance(n.args[1], int):
            self.sizes[n] = _Size(n.args[1])
            return
        if fn == "getitem" and src in self.tuples:
            self.tuple_item(n, src, where)
            return
        if fn == "getitem" and src in self.value and is_last_step(n.args[1]) and self.only_use_is_last_step(n, src):
            self.last_step(n, src)
            return
        picked = as_select(n.args[1]) if fn == "getitem" and src in self.value else None
        if picked is not None:  # x[:, 0]
            at = f"{n.name} in {where or 'forward()'}"
            self.add(n, "Select", {"dim": picked[0], "index": picked[1]}, local="select", path=at,
                     container=_split(where), inputs=[self.tensor(src, n, where)])
            return
        raise UnsupportedModuleError(where, fn, self.unsupported(f"{fn} on {src}", where))

    def size_arith(self, n: fx.Node) -> None:
        """``c // groups``, ``h * w``: a size derived from others (it involves the batch if one does)."""
        parts = [self.sizes[a] for a in n.args if isinstance(a, fx.Node)]
        if len(parts) + sum(isinstance(a, int) for a in n.args) != len(n.args) or any(p.dim is None and not p.derived
                                                                                    for p in parts):
            raise UnsupportedModuleError(container_of(n), qualname(n), f"{n.name}: arithmetic on sizes takes single "
                                                                     "sizes and integers")
        self.sizes[n] = _Size(None, derived=True, batch=any(p.dim == 0 or p.batch for p in parts))

    def tuple_item(self, n: fx.Node, src: fx.Node, where: str) -> None:
        """``out, _ = self.lstm(x)``: element 0 is the output LayerLab passes on; the rest (an LSTM's
        final states, attention weights) has no place in a graph."""
        node = self.nodes[self.tuples[src]]
        if n.args[1] != 0:
            raise UnsupportedModuleError(
                node.path, type(node.module).__name__,
                f"forward() uses element {n.args[1]!r} of what {type(node.module).__name__} returns; LayerLab "
                "passes on only its output (element 0): use out[:, -1] for the last step",
            )
        self.value[n] = node.key

    def only_use_is_last_step(self, n: fx.Node, src: fx.Node) -> bool:
        """``out[:, -1]`` right after a recurrent layer whose outputs are used for nothing else."""
        node = self.nodes.get(self.value[src])
        users = [u for u in src.users if u in self.live]
        return node is not None and node.params.get("output", "sequence") == "sequence" and \
            "output" in get_op(node.op).params_model.model_fields and users == [n]

    def last_step(self, n: fx.Node, src: fx.Node) -> None:
        """The recurrent layer's ``output`` becomes 'last' (elsewhere ``x[:, -1]`` is a Select)."""
        node = self.nodes[self.value[src]]
        node.params["output"] = "last"
        self.value[n] = node.key

    def reshape(self, n: fx.Node, fn: str, where: str) -> None:
        """``x.view(x.size(0), -1)`` and the like: a Flatten or Unflatten when the batch dim stays."""
        src_node = n.args[0]
        src = self.tensor(src_node, n, where)
        dims = list(n.args[1:]) if len(n.args) > 1 else list(n.kwargs.get("shape", n.kwargs.get("size", ())))
        if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
            dims = list(dims[0])
        batch_kept = bool(dims) and (
            (isinstance(dims[0], fx.Node) and self.sizes.get(dims[0]) == _Size(0))
            or (dims[0] == -1 and all(isinstance(d, (int, fx.Node)) and d != -1 for d in dims[1:]))
        )
        for d in dims[1:]:  # later sizes may read the sample's own dims, never the batch's
            size = self.sizes.get(d) if isinstance(d, fx.Node) else None
            if isinstance(d, fx.Node) and (size in (None, _Size(0), _Size(None)) or size.batch):
                batch_kept = False
        in_shape, out_shape = src_node.meta.get(SHAPE), n.meta.get(SHAPE)
        if not batch_kept or in_shape is None or out_shape is None:
            raise UnsupportedModuleError(
                where, fn, f"{n.name}: {fn}{tuple(_show(d) for d in dims)} must keep the batch dim first, "
                           "as in x.view(x.size(0), -1)",
            )
        s, t = in_shape[1:], out_shape[1:]
        at = f"{n.name} in {where or 'forward()'}"
        if s == t:
            self.value[n] = src
            return
        found = as_flatten(s, t)
        if found is not None:
            a, b = found
            params = {"start_dim": a + 1, "end_dim": -1 if b == len(s) - 1 else b + 1}
            self.add(n, "Flatten", _tidy("Flatten", params, at), local="flatten", path=at,
                     container=_split(where), inputs=[src])
            return
        split = as_unflatten(s, t)
        if split is not None:
            i, sizes = split
            self.add(n, "Unflatten", {"dim": i + 1, "unflattened_size": list(sizes)}, local="unflatten",
                     path=at, container=_split(where), inputs=[src])
            return
        raise UnsupportedModuleError(
            where, fn, f"{n.name}: {fn} from {s} to {t} is neither a Flatten nor an Unflatten of one dim",
        )

    def add(self, n: fx.Node, op: str, params: dict[str, Any], *, local: str, path: str,
            container: tuple[str, ...], module: nn.Module | None = None, inputs: list[str] | None = None,
            as_tuple: bool = False, parameter: nn.Parameter | None = None) -> None:
        if inputs is None:
            where = ".".join(container)
            inputs = [self.tensor(a, n, where) for a in n.args]
            if n.kwargs or len(inputs) != 1:
                raise ModuleImportError(path, f"a layer takes one tensor; received {len(inputs)} and {dict(n.kwargs)}")
        self.nodes[n.name] = Node(key=n.name, op=op, params=params, container=container, local=local,
                                   path=path, module=module, inputs=inputs, parameter=parameter)
        if as_tuple:
            self.tuples[n] = n.name
        else:
            self.value[n] = n.name

    def check_weights_used(self) -> None:
        """Every parameter and buffer must belong to a layer the graph holds, or strict loading fails."""
        held = {node.path for node in self.nodes.values() if node.module is not None}
        raw = {node.path for node in self.nodes.values() if node.parameter is not None}

        def is_held(owner: str) -> bool:  # by the layer itself or one holding it (an encoder's attention)
            while owner and owner not in held:
                owner = owner.rpartition(".")[0]
            return owner in held

        missing: dict[str, list[str]] = {}
        for key in self.module.state_dict():
            owner, _, leaf = key.rpartition(".")
            if key not in raw and not is_held(owner):
                missing.setdefault(owner, []).append(leaf)
        for owner, names in missing.items():
            kind = self.type_at(owner)
            raise ModuleImportError(
                owner, f"{kind} holds {', '.join(names)} but forward() never calls it as a layer, so the graph "
                       "would lose those weights",
            )

    # -- 3. check the assembled graph against the module ------------------------------------

    def validate(self, data: dict[str, Any]) -> Graph:
        """Analyze the graph; then let the inferred sizes (in_channels...) go where they agree."""
        graph = Graph.model_validate(data)
        analysis = analyze(graph)
        if analysis.plan is None:
            lines = [f"- {self.paths.get(e.node or '', e.node or 'graph')}: {e.message}"
                     for e in analysis.report.errors]
            raise ModuleImportError("", "the imported graph is invalid:\n" + "\n".join(lines))
        explicit = {p.node_id: p.args for _, p in iter_layers(analysis.plan.root) if p.node_id}
        lean = _without_input_sizes(data)
        lean_plan = analyze(lean).plan
        if lean_plan is not None:
            inferred = {p.node_id: p.args for _, p in iter_layers(lean_plan.root) if p.node_id}
            by_id = {n["id"]: n for n in lean["nodes"]}
            keep = [i for i, args in explicit.items() if inferred.get(i) != args]
            original = {n["id"]: n for n in data["nodes"]}
            for i in keep:
                by_id[i]["params"] = original[i]["params"]
            candidate = Graph.model_validate(lean)
            if analyze(candidate).plan is not None:
                return candidate
        return graph

    def compare(self, graph: Graph) -> None:
        """Build on the meta device: same state_dict keys and shapes, same attributes per layer."""
        from ..compile import build

        with torch.device("meta"):
            built = build(graph, seed=None)
        want = {k: tuple(v.shape) for k, v in self.module.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in built.state_dict().items()}
        if want != got:
            diff = sorted(set(want.items()) ^ set(got.items()))[:6]
            raise ModuleImportError("", f"the imported graph's state_dict differs from the module's: {diff}")
        for path, m in self.module.named_modules():  # every layer, also those folded into a repeat or a shortcut
            if type(m) not in self.leaves or not path:
                continue
            try:
                theirs = _attrs(built.get_submodule(path))
            except AttributeError:
                continue  # never called: no part of the graph (check_weights_used saw it holds nothing)
            mine = _attrs(m)
            diff = {k: (v, theirs.get(k)) for k, v in mine.items() if theirs.get(k) != v}
            if diff:
                shown = ", ".join(f"{k}={a!r} (LayerLab builds {b!r})" for k, (a, b) in diff.items())
                raise UnsupportedModuleError(
                    path, type(m).__name__,
                    f"LayerLab's {self.leaves[type(m)]} cannot express {shown}; received {_short(m)}",
                )


# ---------------------------------------------------------------------------------------------


def _split(path: str) -> tuple[str, ...]:
    return tuple(path.split(".")) if path else ()



def _short(m: nn.Module) -> str:
    text = repr(m).replace("\n", " ")
    return text if len(text) <= 120 else text[:117] + "..."


def _show(d: Any) -> Any:
    return d.name if isinstance(d, fx.Node) else d


def _tidy(op: str, params: dict[str, Any], path: str) -> dict[str, Any]:
    """Validated params, written the short way: (2, 2) as 2, defaults left out."""
    model = get_op(op).params_model
    fields = model.model_fields
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, (list, tuple)):
            v = list(v)
            if v and len(set(v)) == 1 and not isinstance(fields[k].default, list):
                try:
                    model.model_validate({**params, k: v[0]})
                    v = v[0]
                except ValueError:
                    pass
        out[k] = v
    try:
        model.model_validate(out)
    except ValueError as e:
        raise UnsupportedModuleError(path, op, f"its settings do not fit LayerLab's {op}: {e}") from e
    return {k: v for k, v in out.items() if fields[k].is_required() or v != fields[k].default
            or k in get_op(op).input_size_args}


def _without_input_sizes(data: dict[str, Any]) -> dict[str, Any]:
    nodes = []
    for n in data["nodes"]:
        args = get_op(n["op"]).input_size_args
        nodes.append({**n, "params": {k: v for k, v in n["params"].items() if k not in args}})
    return {**data, "nodes": nodes}


_SKIP_ATTRS = {"training", "inplace"}


def _attrs(m: nn.Module) -> dict[str, Any]:
    """A layer's plain settings, written one way: (2, 2) and [2, 2] as 2."""

    def norm(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            v = tuple(norm(x) for x in v)
            return v[0] if len(v) > 0 and len(set(v)) == 1 else v
        return v

    return {k: norm(v) for k, v in vars(m).items()
            if not k.startswith("_") and k not in _SKIP_ATTRS
            and isinstance(v, (int, float, str, bool, tuple, list, type(None)))}


