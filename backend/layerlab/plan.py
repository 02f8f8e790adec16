"""The module tree the analysis hands to the compiler and the code generator (pure Python).

One plan, two renderings: ``compile.build`` instantiates it as torch modules and
``codegen.to_python`` prints it as source, so the code shown is exactly the model built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

from .graph import InitSpec
from .ops.base import Shape


@dataclass
class LayerPlan:
    """One ``nn.<torch_class>(**args)``."""

    name: str
    node_id: str | None
    torch_class: str
    args: dict[str, Any]
    positional: tuple[str, ...]
    in_shape: Shape
    out_shape: Shape
    frozen: bool = False
    init: InitSpec | None = None


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
    """One line of a DAG's forward: ``var = module(inputs)``, ``sum(inputs)`` or ``cat(inputs, dim)``."""

    var: str
    kind: Literal["module", "add", "cat"]
    inputs: list[str]
    shape: Shape
    target: str | None = None  # the submodule's name, for kind == "module"
    dim: int | None = None  # for kind == "cat"


@dataclass
class DagPlan:
    """A region with branches: submodules plus a forward that follows the topological order."""

    name: str
    node_id: str | None
    input_var: str
    modules: list[Plan]
    steps: list[Step]
    output_var: str
    out_shape: Shape
    frozen: bool = False


Plan = Union[LayerPlan, SeqPlan, ResidualPlan, DagPlan]  # noqa: UP007


@dataclass
class ModelPlan:
    """The whole model: its root plan and what the input looks like."""

    root: Plan
    input_shape: Shape
    input_dtype: str
    name: str = "model"
    has_residual: bool = field(default=False)
