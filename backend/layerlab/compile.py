"""Stage 3, compile: the analysis's plan → torch modules.

Chains become ``nn.Sequential`` whose submodule names are the node ids (so ``state_dict`` keys read
like ``block1.0.conv1.weight``); blocks become nested Sequentials; ``repeat`` a Sequential of
copies; ``residual`` a :class:`Residual`; regions with Add/Concat (or raw parameters, a ViT's
``cls_token``) a ``torch.fx.GraphModule`` whose forward follows the topological order. Frozen nodes
get ``requires_grad=False``.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from typing import Any

import torch
from torch import fx, nn

from . import modules
from .graph import Graph, GraphInvalidError, InitSpec
from .modules import Residual
from .ops import get_op
from .plan import (
    PARAMETER_STD,
    DagPlan,
    LayerPlan,
    ModelPlan,
    ParameterPlan,
    Plan,
    ResidualPlan,
    SeqPlan,
    class_name,
    init_targets,
    iter_frozen,
    iter_layers,
)
from .shapes import analyze

__all__ = ["Residual", "build", "build_plan", "init_layer", "plan_model"]


def plan_model(graph: Graph | dict[str, Any]) -> ModelPlan:
    """Analyze a graph and return its plan, or raise :class:`GraphInvalidError`."""
    analysis = analyze(graph)
    if analysis.plan is None:
        raise GraphInvalidError(analysis.report.errors)
    return analysis.plan


def build(graph: Graph | dict[str, Any], *, init: InitSpec | str | dict[str, Any] | None = None,
          seed: int | None = 0) -> nn.Module:
    """Compile a graph into a torch module made of nested ``nn.Sequential`` blocks.

    ``init`` is the global initialization (a node's or block's own ``init`` wins); ``seed`` makes the
    weights reproducible without touching the caller's RNG (None: use the current RNG).
    """
    return build_plan(plan_model(graph), init=init, seed=seed)


def build_plan(plan: ModelPlan, *, init: InitSpec | str | dict[str, Any] | None = None,
               seed: int | None = 0) -> nn.Module:
    default = InitSpec.model_validate(init) if init is not None else None
    # a seed runs on a forked RNG so the caller's is untouched; None draws from (and advances) the
    # caller's RNG, as constructing the modules by hand would, so two builds differ
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = _module(plan.root)
        # Initialization runs after construction, in module order, as a person would write it.
        for path, layer in iter_layers(plan.root):
            spec = layer.init or default
            if spec is not None and spec.scheme != "default":
                weights, biases = init_targets(layer)
                if weights:
                    init_layer(model.get_submodule(path), spec, weights=weights, biases=biases)
    for path, part in iter_frozen(plan.root):
        if isinstance(part, ParameterPlan):
            model.get_parameter(path).requires_grad_(False)
        else:
            (model.get_submodule(path) if path else model).requires_grad_(False)
    return model


def _module(p: Plan) -> nn.Module:
    if isinstance(p, ParameterPlan):
        raise TypeError(f"{p.name}: a raw parameter belongs to a branching region's module")
    if isinstance(p, LayerPlan):
        return getattr(modules if p.custom else nn, p.torch_class)(**p.args)
    if isinstance(p, SeqPlan):
        return nn.Sequential(OrderedDict((item.name, _module(item)) for item in p.items))
    if isinstance(p, ResidualPlan):
        return Residual(_module(p.body), _module(p.shortcut) if p.shortcut is not None else None)
    return _dag_module(p)


def _dag_module(p: DagPlan) -> fx.GraphModule:
    root = nn.Module()
    for item in p.modules:  # in node order, as the generated __init__ writes them
        if isinstance(item, ParameterPlan):
            root.register_parameter(item.name, _parameter(item))
        else:
            root.add_module(item.name, _module(item))
    g = fx.Graph()
    env: dict[str, fx.Node] = {p.input_var: g.placeholder(p.input_var)}
    for step in p.steps:
        args = [env[v] for v in step.inputs]
        if step.kind == "module":
            env[step.var] = g.call_module(step.target, (args[0],))
            continue
        if step.kind == "parameter":  # the op's parameter form: function(x, self.<target>)
            form = get_op(step.op).parameter_form
            env[step.var] = g.call_function(getattr(modules, form.function), (args[0], g.get_attr(step.target)))
            continue
        rule = get_op(step.op).merge
        fn = _function(rule.function)
        if rule.infix is not None:  # folded pairwise: a + b + c
            acc = args[0]
            for other in args[1:]:
                acc = g.call_function(fn, (acc, other))
            env[step.var] = acc
        else:  # one call on the list: torch.cat([a, b], dim=1)
            env[step.var] = g.call_function(fn, (args,), dict(step.kwargs))
    g.output(env[p.output_var])
    return fx.GraphModule(root, g, class_name=class_name(p.name))


def _parameter(p: ParameterPlan) -> nn.Parameter:
    """The raw parameter as the generated code writes it: ``nn.Parameter(torch.zeros(1, 1, D))``."""
    if p.form.init == "normal":
        return nn.Parameter(torch.empty(p.shape).normal_(std=PARAMETER_STD))
    return nn.Parameter(torch.zeros(p.shape))


def _function(path: str) -> Any:
    """A merge rule's function from its dotted name ('operator.add', 'torch.cat')."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def init_layer(module: nn.Module, spec: InitSpec, *, weights: list[str], biases: list[str]) -> None:
    """Apply one init scheme to a layer's weights (the parameters its op's rule names); its biases
    start at zero under every scheme."""
    for name in weights:
        _init_tensor(module.get_parameter(name), spec)
    for name in biases:
        nn.init.zeros_(module.get_parameter(name))


def _init_tensor(w: torch.Tensor, spec: InitSpec) -> None:
    nl = spec.nonlinearity
    match spec.scheme:
        case "kaiming_normal":
            nn.init.kaiming_normal_(w, nonlinearity=nl)
        case "kaiming_uniform":
            nn.init.kaiming_uniform_(w, nonlinearity=nl)
        case "xavier_normal":
            nn.init.xavier_normal_(w)
        case "xavier_uniform":
            nn.init.xavier_uniform_(w)
        case "orthogonal":
            nn.init.orthogonal_(w)
        case "normal":
            nn.init.normal_(w, mean=0.0, std=spec.std)
        case "zeros":
            nn.init.zeros_(w)
