"""Import: a ``torch.nn.Module`` written in code becomes a LayerLab graph the editor can open.

``from_module`` traces ``forward`` with torch.fx, the catalog's torch classes being the leaves:

- every leaf call becomes a layer node, its params read back by the op's ``from_torch``;
- the functions LayerLab has an op for become nodes too: ``+`` / ``torch.add`` → Add,
  ``torch.cat`` → Concat, ``torch.flatten`` / ``x.view(x.size(0), -1)`` → Flatten, ``F.relu`` → ReLU...;
- every submodule that holds them (an ``nn.Sequential``, a ResNet-style block, a ModuleList) becomes
  a Block named like the attribute it was, so the compiled graph's ``state_dict`` keys are the
  original's and ``build(from_module(m)).load_state_dict(m.state_dict(), strict=True)`` works.

Before returning, the graph is analyzed and built on the meta device, and every layer is checked
against the original module's attributes: what the catalog cannot express is an error that names
the submodule, never a silently different model.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from .graph import FORMAT, RESERVED_NAMES, Graph
from .ops import get_op, op_names
from .ops.layers import MERGE_OPS
from .plan import iter_layers
from .shapes import analyze

F = nn.functional

# The editor's box sizes (frontend/src/graph/kinds.ts), for a left-to-right layout.
LAYER_SIZE = (190, 72)
COLLAPSED_BLOCK = (220, 84)
BLOCK_PAD = {"x": 24, "top": 56, "bottom": 20}
GAP = (60, 30)  # between columns, between boxes in a column

_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,63}|[0-9]{1,6})$")
_MAX_ID = 64


class ModuleImportError(ValueError):
    """The module cannot become a LayerLab graph; ``path`` names the submodule ('' is the root)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path or '<root module>'}: {message}")


class UnsupportedModuleError(ModuleImportError):
    """A submodule, or a function its forward calls, has no op in the catalog."""

    def __init__(self, path: str, type_name: str, message: str) -> None:
        self.type_name = type_name
        super().__init__(path, message)


# ---------------------------------------------------------------------------------------------
# The functions forward() may call: name → (op, argument names as torch orders them, defaults)


@dataclass(frozen=True)
class _Fn:
    op: str
    args: tuple[str, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    params: tuple[str, ...] = ()  # arguments that are the op's params, under the same name


FUNCTIONS: dict[str, _Fn] = {
    "relu": _Fn("ReLU", ("input", "inplace")),
    "sigmoid": _Fn("Sigmoid", ("input",)),
    "tanh": _Fn("Tanh", ("input",)),
    "silu": _Fn("SiLU", ("input", "inplace")),
    "gelu": _Fn("GELU", ("input", "approximate"), {"approximate": "none"}, ("approximate",)),
    "leaky_relu": _Fn("LeakyReLU", ("input", "negative_slope", "inplace"), {"negative_slope": 0.01},
                      ("negative_slope",)),
    "elu": _Fn("ELU", ("input", "alpha", "inplace"), {"alpha": 1.0}, ("alpha",)),
    "softmax": _Fn("Softmax", ("input", "dim", "_stacklevel", "dtype"), {"dim": None, "dtype": None}, ("dim",)),
    "log_softmax": _Fn("LogSoftmax", ("input", "dim", "_stacklevel", "dtype"), {"dim": None, "dtype": None},
                       ("dim",)),
    "max_pool2d": _Fn(
        "MaxPool2d",
        ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
        {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False},
        ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    ),
    "avg_pool2d": _Fn(
        "AvgPool2d",
        ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
        {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None},
        ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    ),
    "adaptive_avg_pool2d": _Fn("AdaptiveAvgPool2d", ("input", "output_size"), {}, ("output_size",)),
    "adaptive_max_pool2d": _Fn("AdaptiveMaxPool2d", ("input", "output_size", "return_indices"),
                               {"return_indices": False}, ("output_size",)),
    "dropout": _Fn("Dropout", ("input", "p", "training", "inplace"), {"p": 0.5, "training": True}, ("p",)),
    # torch's own default start_dim is 0 (the batch); the op's is 1, so it is always passed on.
    "flatten": _Fn("Flatten", ("input", "start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1},
                   ("start_dim", "end_dim")),
}
# Arguments that must keep their default for the op to mean the same thing.
_MUST_BE = {"return_indices": False, "divisor_override": None, "dtype": None}
_IGNORED = {"inplace", "_stacklevel"}

_CALLABLES: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", F.relu_: "relu", torch.relu_: "relu",
    torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh",
    F.silu: "silu", F.gelu: "gelu", F.leaky_relu: "leaky_relu", F.elu: "elu",
    F.softmax: "softmax", torch.softmax: "softmax", F.log_softmax: "log_softmax", torch.log_softmax: "log_softmax",
    F.max_pool2d: "max_pool2d", F.avg_pool2d: "avg_pool2d",
    F.adaptive_avg_pool2d: "adaptive_avg_pool2d", F.adaptive_max_pool2d: "adaptive_max_pool2d",
    F.dropout: "dropout", torch.flatten: "flatten",
    operator.add: "add", operator.iadd: "add", torch.add: "add",
    torch.cat: "cat", torch.concat: "cat", torch.concatenate: "cat",
    getattr: "getattr", operator.getitem: "getitem",
}
_METHODS = {"relu", "relu_", "sigmoid", "tanh", "softmax", "log_softmax", "flatten", "add", "add_",
            "view", "reshape", "size", "contiguous"}


def _catalog_classes() -> dict[type[nn.Module], str]:
    """The torch class of every op in the catalog → the op's name."""
    out: dict[type[nn.Module], str] = {}
    for op in op_names():
        cls_name = get_op(op).torch_class
        if cls_name is not None:
            out[getattr(nn, cls_name)] = op
    return out


class _Tracer(fx.Tracer):
    """Stops at the catalog's classes, and at any other torch.nn layer (to report it by name)."""

    def __init__(self, leaves: dict[type[nn.Module], str]) -> None:
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return type(m) in self.leaves or super().is_leaf_module(m, module_qualified_name)


_SHAPE = "layerlab_shape"  # node.meta key: the value's shape on the probe batch


class _Shapes(fx.Interpreter):
    """Runs the traced graph once, noting each tensor's shape (torch's ShapeProp, without its
    seconds of first-call imports)."""

    current: fx.Node | None = None

    def run_node(self, n: fx.Node) -> Any:
        self.current = n
        out = super().run_node(n)
        if isinstance(out, torch.Tensor):
            n.meta[_SHAPE] = tuple(out.shape)
        return out


# ---------------------------------------------------------------------------------------------
# What the trace turns into


@dataclass
class _Node:
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


@dataclass(frozen=True)
class _Size:
    """``x.size(d)`` / ``x.shape[d]`` (dim None: the whole size), only for view/reshape arguments."""

    dim: int | None


INPUT_KEY = ""


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
        self.leaves = _catalog_classes()
        self.nodes: dict[str, _Node] = {}  # key → node, in forward order
        self.value: dict[fx.Node, str] = {}  # fx value → producer key
        self.sizes: dict[fx.Node, _Size] = {}  # size helpers, for view/reshape arguments only
        self.out_key: str = INPUT_KEY
        self.paths: dict[str, str] = {}  # graph node id → module path, for messages

    # -- 1. trace ----------------------------------------------------------------------------

    def run(self) -> Graph:
        if type(self.module) in self.leaves:
            raise ModuleImportError("", f"the root is a bare nn.{type(self.module).__name__}; wrap it in "
                                        "nn.Sequential so it has a name in the graph")
        gm = self.trace()
        live = _live(gm.graph)
        self.screen(gm, live)  # before running it: a layer LayerLab lacks may be why it would fail
        self.propagate_shapes(gm)
        self.translate(gm, live)
        self.check_weights_used()
        data = self.assemble()
        graph = self.validate(data)
        self.compare(graph)
        return graph

    def trace(self) -> fx.GraphModule:
        tracer = _Tracer(self.leaves)
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
        probe = _Shapes(gm)
        try:
            self.module.eval()
            with torch.no_grad():
                probe.run(x)
        except Exception as e:
            n = probe.current
            path = str(n.target) if n is not None and n.op == "call_module" else (_container(n) if n else "")
            reason = str(e).strip().split("\n\n")[0]  # fx appends the whole graph; the cause comes first
            raise ModuleImportError(
                path, f"forward() fails on an input of shape {tuple(x.shape)} ({self.dtype}): {reason}"
            ) from e
        finally:
            for m, mode in modes.items():
                m.training = mode

    # -- 2. translate the fx nodes -----------------------------------------------------------

    def screen(self, gm: fx.GraphModule, live: set[fx.Node]) -> None:
        """Every layer and function forward() uses must have an op; containers must run once."""
        for n in gm.graph.nodes:
            if n not in live or n.op in ("placeholder", "output"):
                continue
            where = _container(n)
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
                    "hold weights in a LayerLab graph",
                )
            if n.op == "call_module":
                m = self.module.get_submodule(str(n.target))
                if type(m) not in self.leaves:
                    raise UnsupportedModuleError(
                        str(n.target), type(m).__name__,
                        f"nn.{type(m).__name__} has no LayerLab op; received {_short(m)}",
                    )
            elif _function_name(n) is None:
                qual = _qualname(n)
                raise UnsupportedModuleError(where, qual, self.unsupported(f"{qual}()", where))

    def translate(self, gm: fx.GraphModule, live: set[fx.Node]) -> None:
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        called: dict[str, int] = {}
        for n in gm.graph.nodes:
            if n not in live:
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
        self.add(n, op, params, local=local, path=path if not count else f"{path} (call {count + 1})",
                 container=_split(parent), module=None if count else m)

    def params_of(self, op: str, m: nn.Module, path: str) -> dict[str, Any]:
        spec = get_op(op)
        raw = spec.from_torch(m)
        return _tidy(op, raw, path)

    def function_call(self, n: fx.Node) -> None:
        where = _container(n)
        fn = _function_name(n)
        if fn in ("size", "getattr", "getitem"):
            self.size_helper(n, fn, where)
        elif fn == "contiguous":
            self.value[n] = self.tensor(n.args[0], n, where)
        elif fn == "add":
            self.merge_add(n, where)
        elif fn == "cat":
            self.merge_cat(n, where)
        elif fn in ("view", "reshape"):
            self.reshape(n, fn, where)
        else:
            self.activation(n, fn, where)

    def unsupported(self, what: str, where: str) -> str:
        known = ", ".join(sorted({*FUNCTIONS, "add", "cat", "view", "reshape"}))
        inside = f" in {self.type_at(where)}.forward()" if where else " in forward()"
        return f"{what}{inside} has no LayerLab op (supported functions: {known})"

    def tensor(self, arg: Any, n: fx.Node, where: str) -> str:
        """The producer key of a tensor argument; anything else is an error."""
        if isinstance(arg, fx.Node) and arg in self.value:
            return self.value[arg]
        what = f"the size helper {arg.name}" if isinstance(arg, fx.Node) else repr(arg)
        raise UnsupportedModuleError(
            where, str(n.target), f"{n.name} takes {what} where LayerLab needs a tensor from a layer",
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
        raise UnsupportedModuleError(where, fn, self.unsupported(f"{fn} on {src}", where))

    def merge_add(self, n: fx.Node, where: str) -> None:
        if set(n.kwargs) - {"alpha"} or n.kwargs.get("alpha", 1) != 1 or len(n.args) != 2:
            raise UnsupportedModuleError(where, "add", f"{n.name}: only a plain a + b of two tensors is an Add; "
                                                       f"received args {n.args} {n.kwargs}")
        inputs = [self.tensor(a, n, where) for a in n.args]
        self.add(n, "Add", {}, local="add", path=f"{n.name} in {where or 'forward()'}",
                 container=_split(where), inputs=inputs)

    def merge_cat(self, n: fx.Node, where: str) -> None:
        tensors = n.args[0] if n.args else n.kwargs.get("tensors")
        dim = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim", 0)
        if not isinstance(tensors, (list, tuple)) or not isinstance(dim, int):
            raise UnsupportedModuleError(where, "cat", f"{n.name}: torch.cat needs a list of tensors and an int dim")
        inputs = [self.tensor(a, n, where) for a in tensors]
        if len(inputs) == 1:
            self.value[n] = inputs[0]
            return
        self.add(n, "Concat", {"dim": dim}, local="cat", path=f"{n.name} in {where or 'forward()'}",
                 container=_split(where), inputs=inputs)

    def activation(self, n: fx.Node, fn: str, where: str) -> None:
        spec = FUNCTIONS[fn]
        args = dict(spec.defaults)
        if len(n.args) > len(spec.args):
            raise UnsupportedModuleError(where, fn, f"{n.name}: too many arguments to {fn}")
        args.update(zip(spec.args, n.args))
        for k, v in n.kwargs.items():
            if k not in spec.args:
                raise UnsupportedModuleError(where, fn, f"{n.name}: {fn}() argument {k!r} has no LayerLab param")
            args[k] = v
        for k, must in _MUST_BE.items():
            if k in args and args[k] != must:
                raise UnsupportedModuleError(where, fn, f"{n.name}: {fn}({k}={args[k]!r}) has no LayerLab op")
        src = self.tensor(args["input"], n, where)
        if fn == "dropout" and not args["training"]:
            self.value[n] = src  # dropout with training=False is the identity
            return
        if fn in ("softmax", "log_softmax") and args["dim"] is None:
            raise UnsupportedModuleError(where, fn, f"{n.name}: {fn} without dim; pass dim=1")
        params = {k: args[k] for k in spec.params if k in args}
        if "stride" in params and params["stride"] is None:
            del params["stride"]
        params = _tidy(spec.op, params, f"{n.name} in {where or 'forward()'}")
        self.add(n, spec.op, params, local=fn, path=f"{n.name} in {where or 'forward()'}",
                 container=_split(where), inputs=[src])

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
            if isinstance(d, fx.Node) and self.sizes.get(d) in (None, _Size(0), _Size(None)):
                batch_kept = False
        in_shape, out_shape = src_node.meta.get(_SHAPE), n.meta.get(_SHAPE)
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
        found = _as_flatten(s, t)
        if found is not None:
            a, b = found
            params = {"start_dim": a + 1, "end_dim": -1 if b == len(s) - 1 else b + 1}
            self.add(n, "Flatten", _tidy("Flatten", params, at), local="flatten", path=at,
                     container=_split(where), inputs=[src])
            return
        split = _as_unflatten(s, t)
        if split is not None:
            i, sizes = split
            self.add(n, "Unflatten", {"dim": i + 1, "unflattened_size": list(sizes)}, local="unflatten",
                     path=at, container=_split(where), inputs=[src])
            return
        raise UnsupportedModuleError(
            where, fn, f"{n.name}: {fn} from {s} to {t} is neither a Flatten nor an Unflatten of one dim",
        )

    def add(self, n: fx.Node, op: str, params: dict[str, Any], *, local: str, path: str,
            container: tuple[str, ...], module: nn.Module | None = None, inputs: list[str] | None = None) -> None:
        if inputs is None:
            where = ".".join(container)
            inputs = [self.tensor(a, n, where) for a in n.args]
            if n.kwargs or len(inputs) != 1:
                raise ModuleImportError(path, f"a layer takes one tensor; received {len(inputs)} and {dict(n.kwargs)}")
        self.nodes[n.name] = _Node(key=n.name, op=op, params=params, container=container, local=local,
                                   path=path, module=module, inputs=inputs)
        self.value[n] = n.name

    def check_weights_used(self) -> None:
        """Every parameter and buffer must belong to a layer the graph holds, or strict loading fails."""
        held = {node.path for node in self.nodes.values() if node.module is not None}
        missing: dict[str, list[str]] = {}
        for key in self.module.state_dict():
            owner, _, leaf = key.rpartition(".")
            if owner not in held:
                missing.setdefault(owner, []).append(leaf)
        for owner, names in missing.items():
            kind = self.type_at(owner)
            raise ModuleImportError(
                owner, f"{kind} holds {', '.join(names)} but forward() never calls it as a layer, so the graph "
                       "would lose those weights",
            )

    # -- 3. assemble the graph ---------------------------------------------------------------

    def assemble(self) -> dict[str, Any]:
        nodes = list(self.nodes.values())
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
            if node.module is not None:
                check_name(node.local, node.path)
                names.setdefault(node.container, set()).add(node.local)
        for c in ordered_blocks:
            blocks[c] = new_id(".".join(c))
        for node in nodes:
            if node.module is not None:
                node.id = new_id(node.path)
                node.name = node.local if node.local != node.id else None
        for node in nodes:
            if node.module is not None:
                continue
            taken = names.setdefault(node.container, set())
            local, k = node.local, 1
            while local in taken:
                local = f"{node.local}_{k}"
                k += 1
            prefix = ".".join(node.container)
            node.id = new_id(f"{prefix}.{local}" if prefix else local)
            if node.op in MERGE_OPS:  # not a module: its id is its name among the siblings
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

        def connect(src: str, dst: str, *, merge: _Node | None = None) -> None:
            if (src, dst) in seen:
                if merge is not None:
                    twice.append(ModuleImportError(merge.path, f"{merge.op} takes the same tensor twice ({src}); "
                                                               "a graph edge can join two nodes only once"))
                return
            seen.add((src, dst))
            edges.append((src, dst))

        def link(p: str, consumer: _Node | None) -> None:
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
            merge = consumer if consumer is not None and consumer.op in MERGE_OPS else None
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
        link(self.out_key, None)

        what = {INPUT_KEY: "the model input"} | {node.key: node.path for node in nodes}
        for c in ordered_blocks:
            path = ".".join(c)
            ins, outs = block_inputs.get(c, []), block_outputs.get(c, [])
            if len(ins) != 1:
                raise ModuleImportError(
                    path, f"{self.type_at(path)} takes {len(ins)} inputs ({', '.join(what[k] for k in ins)}); a "
                          "Block takes one tensor: call its layers in one chain from one input",
                )
            if len(outs) != 1:
                raise ModuleImportError(
                    path, f"{len(outs)} values from inside {self.type_at(path)} are used outside it "
                          f"({', '.join(what[k] for k in outs)}); a Block has one output",
                )
        if twice:
            raise twice[0]

        data_nodes: list[dict[str, Any]] = [
            {"id": input_id, "op": "Input", "params": {"shape": list(self.shape)}
             | ({"dtype": self.dtype} if self.dtype != "float32" else {})},
        ]
        emitted: set[tuple[str, ...]] = set()
        for node in nodes:  # forward order, each block just before its first member
            for k in range(1, len(node.container) + 1):
                c = node.container[:k]
                if c in emitted:
                    continue
                emitted.add(c)
                entry: dict[str, Any] = {"id": blocks[c], "op": "Block", "params": {}}
                if len(c) > 1:
                    entry["parent"] = blocks[c[:-1]]
                if c[-1] != blocks[c]:
                    entry["name"] = c[-1]
                entry["label"] = self.type_at(".".join(c))
                data_nodes.append(entry)
            entry = {"id": node.id, "op": node.op, "params": node.params}
            if node.container:
                entry["parent"] = blocks[node.container]
            if node.name is not None:
                entry["name"] = node.name
            weights = list(node.module.parameters()) if node.module is not None else []
            if weights and not any(w.requires_grad for w in weights):
                entry["frozen"] = True
            data_nodes.append(entry)
        data_nodes.append({"id": output_id, "op": "Output", "params": {}})
        data = {
            "format": FORMAT,
            "name": self.name,
            "nodes": data_nodes,
            "edges": [{"source": s, "target": t} for s, t in edges],
        }
        self.paths = {node.id: node.path for node in nodes} | {blocks[c]: ".".join(c) for c in ordered_blocks}
        return layout(data)

    # -- 4. check the result against the original --------------------------------------------

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
        from .compile import build

        with torch.device("meta"):
            built = build(graph, seed=None)
        want = {k: tuple(v.shape) for k, v in self.module.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in built.state_dict().items()}
        if want != got:
            diff = sorted(set(want.items()) ^ set(got.items()))[:6]
            raise ModuleImportError("", f"the imported graph's state_dict differs from the module's: {diff}")
        for node in self.nodes.values():
            if node.module is None:
                continue
            mine, theirs = _attrs(node.module), _attrs(built.get_submodule(node.path))
            diff = {k: (v, theirs.get(k)) for k, v in mine.items() if theirs.get(k) != v}
            if diff:
                shown = ", ".join(f"{k}={a!r} (LayerLab builds {b!r})" for k, (a, b) in diff.items())
                raise UnsupportedModuleError(
                    node.path, type(node.module).__name__,
                    f"LayerLab's {node.op} cannot express {shown}; received {_short(node.module)}",
                )


# ---------------------------------------------------------------------------------------------
# Helpers


def _live(graph: fx.Graph) -> set[fx.Node]:
    """Nodes the output depends on (fx keeps unused calls; they are not part of the model)."""
    out = next(n for n in graph.nodes if n.op == "output")
    live = {out}
    stack = [out]
    while stack:
        for arg in stack.pop().all_input_nodes:
            if arg not in live:
                live.add(arg)
                stack.append(arg)
    return live


def _function_name(n: fx.Node) -> str | None:
    """The canonical name of a function or Tensor method LayerLab can import, else None."""
    if n.op == "call_method":
        name = str(n.target)
        return None if name not in _METHODS else name.removesuffix("_")
    return _CALLABLES.get(n.target) if _hashable(n.target) else None


def _qualname(n: fx.Node) -> str:
    if n.op == "call_method":
        return f"Tensor.{n.target}"
    what = getattr(n.target, "__name__", str(n.target))
    module = getattr(n.target, "__module__", None) or ""
    return f"{module}.{what}" if module and module != "builtins" else what


def _container(n: fx.Node) -> str:
    stack = n.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else ""


def _split(path: str) -> tuple[str, ...]:
    return tuple(path.split(".")) if path else ()


def _first_use(c: tuple[str, ...], nodes: list[_Node]) -> int:
    return next(i for i, n in enumerate(nodes) if n.container[: len(c)] == c)


def _hashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


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
            if len(v) > 1 and len(set(v)) == 1 and not isinstance(fields[k].default, list):
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


def _as_flatten(s: tuple[int, ...], t: tuple[int, ...]) -> tuple[int, int] | None:
    """Sample dims ``a..b`` of ``s`` merged give ``t`` (the widest such span first)."""
    for a in range(len(s)):
        for b in range(len(s) - 1, a, -1):
            merged = 1
            for d in s[a : b + 1]:
                merged *= d
            if s[:a] + (merged,) + s[b + 1 :] == t:
                return a, b
    return None


def _as_unflatten(s: tuple[int, ...], t: tuple[int, ...]) -> tuple[int, tuple[int, ...]] | None:
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


# ---------------------------------------------------------------------------------------------
# Layout: left to right, container by container (children are placed relative to their block)


def layout(data: dict[str, Any]) -> dict[str, Any]:
    """Give every node a ``position``: columns by depth from the input, blocks sized to fit."""
    nodes = data["nodes"]
    kids: dict[str | None, list[dict[str, Any]]] = {}
    for n in nodes:
        kids.setdefault(n.get("parent"), []).append(n)
    sizes: dict[str, tuple[int, int]] = {}

    def place(parent: str | None) -> tuple[int, int]:
        members = kids.get(parent, [])
        ids = {m["id"] for m in members}
        for m in members:
            if m["op"] == "Block":
                w, h = place(m["id"])
                sizes[m["id"]] = (max(w + 2 * BLOCK_PAD["x"], COLLAPSED_BLOCK[0]),
                                  h + BLOCK_PAD["top"] + BLOCK_PAD["bottom"])
            else:
                sizes[m["id"]] = LAYER_SIZE
        preds: dict[str, list[str]] = {i: [] for i in ids}
        for e in data["edges"]:
            if e["source"] in ids and e["target"] in ids:
                preds[e["target"]].append(e["source"])
        rank = _ranks([m["id"] for m in members], preds)
        columns: dict[int, list[dict[str, Any]]] = {}
        for m in members:
            columns.setdefault(rank[m["id"]], []).append(m)
        heights = {r: sum(sizes[m["id"]][1] for m in col) + GAP[1] * (len(col) - 1) for r, col in columns.items()}
        tallest = max(heights.values(), default=0)
        off_x, off_y = (0, 0) if parent is None else (BLOCK_PAD["x"], BLOCK_PAD["top"])
        x = 0
        for r in sorted(columns):
            col = columns[r]
            y = (tallest - heights[r]) // 2
            width = max(sizes[m["id"]][0] for m in col)
            for m in col:
                m["position"] = {"x": x + off_x, "y": y + off_y}
                y += sizes[m["id"]][1] + GAP[1]
            x += width + GAP[0]
        return max(x - GAP[0], 0), tallest

    place(None)
    return data


def _ranks(ids: list[str], preds: dict[str, list[str]]) -> dict[str, int]:
    """Longest path from a source, for each id (Kahn's order; a cycle leaves the rest at 0)."""
    succs: dict[str, list[str]] = {i: [] for i in ids}
    indeg = {i: len(preds[i]) for i in ids}
    for i in ids:
        for p in preds[i]:
            succs[p].append(i)
    rank = dict.fromkeys(ids, 0)
    queue = [i for i in ids if indeg[i] == 0]
    while queue:
        i = queue.pop()
        for s in succs[i]:
            rank[s] = max(rank[s], rank[i] + 1)
            indeg[s] -= 1
            if indeg[s] == 0:
                queue.append(s)
    return rank


__all__ = ["FUNCTIONS", "ModuleImportError", "UnsupportedModuleError", "from_module", "layout"]
