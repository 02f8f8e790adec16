"""The module tree the analysis hands to the compiler and the code generator (pure Python).

One plan, two renderings: ``compile.build`` instantiates it as torch modules and
``codegen.to_python`` prints it as source, so the code shown is exactly the model built.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from .graph import InitSpec
from .ops import ParameterForm, get_op
from .ops.base import Shape


@dataclass
class LayerPlan:
    """One ``nn.<torch_class>(**args)``, built for the catalog op ``op``."""

    name: str
    node_id: str | None
    op: str
    torch_class: str
    args: dict[str, Any]
    positional: tuple[str, ...]
    in_shape: Shape
    out_shape: Shape
    frozen: bool = False
    init: InitSpec | None = None

    @property
    def custom(self) -> bool:
        """Whether the class is one of LayerLab's small modules (layerlab/modules.py)."""
        return get_op(self.op).custom_module


PARAMETER_STD = 0.02  # a parameter form's "normal" start, as ViT and BERT start their tables


@dataclass
class ParameterPlan:
    """A raw ``nn.Parameter`` of the enclosing module (``self.<name>``), for an op in its parameter
    form (:class:`~layerlab.ops.base.ParameterForm`): only a DAG's forward can use one."""

    name: str
    node_id: str | None
    op: str
    shape: Shape  # batch dim included, as torch holds it: (1, 1, D)
    in_shape: Shape
    out_shape: Shape
    frozen: bool = False

    @property
    def form(self) -> ParameterForm:
        form = get_op(self.op).parameter_form
        assert form is not None
        return form


@dataclass
class SeqPlan:
    """``nn.Sequential`` of named items (a chain, a block, or a block's copies)."""

    name: str
    node_id: str | None
    items: list[Plan]
    out_shape: Shape
    frozen: bool = False


@dataclass
class ResidualPlan:
    """``out = body(x) + shortcut(x)``; ``shortcut`` None is the identity."""

    name: str
    node_id: str | None
    body: Plan
    shortcut: Plan | None
    out_shape: Shape
    frozen: bool = False


@dataclass
class Step:
    """One line of a DAG's forward: ``var = module(inputs)``, a merge op's function of the inputs
    (its catalog entry's :class:`~layerlab.ops.base.MergeRule` says which), or an op's parameter
    form using the raw parameter ``target`` (its :class:`~layerlab.ops.base.ParameterForm`)."""

    var: str
    kind: Literal["module", "merge", "parameter"]
    inputs: list[str]
    shape: Shape
    target: str | None = None  # the submodule's or the parameter's name, for kind "module" / "parameter"
    op: str | None = None  # the op, for kind "merge" / "parameter"
    kwargs: dict[str, Any] = field(default_factory=dict)  # the merge function's keyword arguments


@dataclass
class DagPlan:
    """A region with branches (or raw parameters): submodules and parameters, in node order, plus
    a forward that follows the topological order."""

    name: str
    node_id: str | None
    input_var: str
    modules: list[Plan]
    steps: list[Step]
    output_var: str
    out_shape: Shape
    frozen: bool = False


Plan = Union[LayerPlan, ParameterPlan, SeqPlan, ResidualPlan, DagPlan]  # noqa: UP007


@dataclass
class ModelPlan:
    """The whole model: its root plan and what the input looks like."""

    root: Plan
    input_shape: Shape
    input_dtype: str
    name: str = "model"
    has_residual: bool = field(default=False)


# ---------------------------------------------------------------------------------------------
# Walking a plan (shared by the compiler and the code generator)


def class_name(name: str) -> str:
    """A CamelCase Python class name from any graph or block name ('my model' → 'MyModel')."""
    parts = [w for w in re.split(r"[^0-9A-Za-z]+", name) if w]  # ASCII only: it is printed as code
    out = "".join(w[:1].upper() + w[1:] for w in parts) or "Model"
    return out if out[0].isalpha() else "Net" + out


def iter_layers(p: Plan, prefix: str = "") -> Iterator[tuple[str, LayerPlan]]:
    """Every layer with its dotted path from the root, in module registration order."""
    yield from _iter_kind(p, prefix, LayerPlan)


def iter_parameters(p: Plan, prefix: str = "") -> Iterator[tuple[str, ParameterPlan]]:
    """Every raw parameter (an op in its parameter form) with its dotted path: its state_dict key."""
    yield from _iter_kind(p, prefix, ParameterPlan)


def _iter_kind(p: Plan, prefix: str, kind: type[Any]) -> Iterator[tuple[str, Any]]:
    if isinstance(p, kind):
        yield prefix, p
        return
    for child in children(p):
        yield from _iter_kind(child, f"{prefix}.{child.name}" if prefix else child.name, kind)


def init_targets(layer: LayerPlan) -> tuple[list[str], list[str]]:
    """The parameters an init scheme sets on this layer and the biases it zeroes (the op's rule)."""
    return get_op(layer.op).init_targets(layer.args)


def children(p: Plan) -> list[Plan]:
    if isinstance(p, SeqPlan):
        return list(p.items)
    if isinstance(p, ResidualPlan):
        return [p.body] + ([p.shortcut] if p.shortcut is not None else [])
    if isinstance(p, DagPlan):
        return list(p.modules)
    return []


def iter_frozen(p: Plan, prefix: str = "", parent_frozen: bool = False) -> Iterator[tuple[str, Plan]]:
    """The outermost frozen parts: one requires_grad_(False) per frozen layer or block."""
    if p.frozen and not parent_frozen:
        yield prefix, p
        return
    for child in children(p):
        yield from iter_frozen(child, f"{prefix}.{child.name}" if prefix else child.name, p.frozen)
