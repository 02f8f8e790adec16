"""What torch.fx sees: the tracer that stops at the catalog's layers, the shape probe, and the
functions forward() may call, as the catalog entries declare them (``OpSpec.functions``)."""

from __future__ import annotations

import importlib
import operator
from typing import Any

import torch
from torch import fx, nn

from .. import modules
from ..ops import TorchFunction, get_op, op_names

# Calls that are not layers but how forward() reads sizes and reshapes: the importer handles them.
STRUCTURAL_CALLABLES: dict[Any, str] = {
    getattr: "getattr", operator.getitem: "getitem",
    # arithmetic on sizes (c // groups); + and * on sizes are told apart from Add and Multiply by their arguments
    operator.floordiv: "arith", operator.sub: "arith",
}
STRUCTURAL_METHODS = frozenset({"view", "reshape", "size", "contiguous"})


def catalog_classes() -> dict[type[nn.Module], str]:
    """The module classes every op in the catalog builds or imports from → the op's name."""
    out: dict[type[nn.Module], str] = {}
    for op in op_names():
        spec = get_op(op)
        if spec.torch_class is not None:
            out[getattr(modules if spec.custom_module else nn, spec.torch_class)] = op
        for cls_name in spec.import_classes:
            out[getattr(nn, cls_name)] = op
    return out


class FunctionTable:
    """Every function form the catalog declares, by the callable (or Tensor method name) fx records."""

    def __init__(self) -> None:
        self.callables: dict[Any, tuple[str, TorchFunction]] = {}
        self.methods: dict[str, tuple[str, TorchFunction]] = {}
        for op in op_names():
            for fn in get_op(op).functions:
                for name in fn.names:
                    if name.startswith("Tensor."):
                        self.methods[name.removeprefix("Tensor.")] = (op, fn)
                    else:
                        module, _, attr = name.rpartition(".")
                        self.callables[getattr(importlib.import_module(module), attr)] = (op, fn)

    def keys(self) -> list[str]:
        return sorted({fn.key for _, fn in (*self.callables.values(), *self.methods.values())})

    def resolve(self, n: fx.Node) -> str | tuple[str, TorchFunction] | None:
        """A structural helper's name ('size', 'view'...), the (op, function form) of a call the
        catalog has an op for, or None."""
        if n.op == "call_method":
            name = str(n.target)
            return name if name in STRUCTURAL_METHODS else self.methods.get(name)
        if not _hashable(n.target):
            return None
        return STRUCTURAL_CALLABLES.get(n.target) or self.callables.get(n.target)


class Tracer(fx.Tracer):
    """Stops at the catalog's classes, and at any other torch.nn layer (to report it by name)."""

    def __init__(self, leaves: dict[type[nn.Module], str]) -> None:
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return type(m) in self.leaves or super().is_leaf_module(m, module_qualified_name)


SHAPE = "layerlab_shape"  # node.meta key: the value's shape on the probe batch


class Shapes(fx.Interpreter):
    """Runs the traced graph once, noting each tensor's shape (torch's ShapeProp, without its
    seconds of first-call imports)."""

    current: fx.Node | None = None

    def run_node(self, n: fx.Node) -> Any:
        self.current = n
        out = super().run_node(n)
        if isinstance(out, torch.Tensor):
            n.meta[SHAPE] = tuple(out.shape)
        return out


def live_nodes(graph: fx.Graph) -> set[fx.Node]:
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


def qualname(n: fx.Node) -> str:
    if n.op == "call_method":
        return f"Tensor.{n.target}"
    what = getattr(n.target, "__name__", str(n.target))
    module = getattr(n.target, "__module__", None) or ""
    return f"{module}.{what}" if module and module != "builtins" else what


def container_of(n: fx.Node) -> str:
    stack = n.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else ""


def _hashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True
