"""What the trainer needs to know about the model, and the checks of graph against dataset.

``spec_from_graph`` is the one place the trainer meets the core (``layerlab.infer`` and
``layerlab.build``). A :class:`ModelSpec` can also be made by hand around any ``nn.Module``
factory, which is how the trainer is tested independently of the compiler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .config import CLASSIFICATION_LOSSES, LossConfig, RunConfig
from .data import ArrayDataset


class RunSetupError(Exception):
    """The run cannot start; ``reason`` says what is wrong, ``hint`` what to change."""

    def __init__(
        self,
        reason: str,
        *,
        hint: str | None = None,
        node: str | None = None,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint
        self.node = node
        self.field = field  # the run setting concerned, e.g. 'config.data' when the dataset does not fit
        self.errors = errors or []


@dataclass
class ModelSpec:
    """A model to train: a factory (called after seeding) and the facts shape inference found."""

    build: Callable[[], nn.Module]
    input_shape: list[int]
    output_shape: list[int]
    input_dtype: str = "float32"
    # module name (a path part) -> node id; ids name themselves unless a node sets ``name``.
    node_names: dict[str, str] = field(default_factory=dict)
    frozen_nodes: set[str] = field(default_factory=set)
    input_node: str | None = None
    head_node: str | None = None  # the node feeding Output
    head_op: str | None = None
    graph: dict[str, Any] | None = None  # JSON of the graph, stored in checkpoint metadata
    memory_bytes: int | None = None  # the analysis's training-memory estimate at the run's batch size

    def node_for_path(self, path: str) -> str:
        """The node a module path belongs to: its last part that names a node, else the path."""
        for part in reversed(path.split(".")):
            if part in self.node_names:
                return self.node_names[part]
        return path or "model"

    def in_frozen_node(self, path: str) -> bool:
        return any(self.node_names.get(part) in self.frozen_nodes for part in path.split("."))


def _fmt(shape: list[int] | tuple[int, ...] | None) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")" if shape is not None else "(?)"


@dataclass
class PlanBuilder:
    """Builds the model from an analysed plan (picklable, so a spec can go to a worker process)."""

    plan: Any  # layerlab.plan.ModelPlan
    init: Any
    seed: int | None

    def __call__(self) -> nn.Module:
        from layerlab.compile import build_plan  # noqa: PLC0415 - the train package stays light

        return build_plan(self.plan, init=self.init, seed=self.seed)


def spec_from_graph(graph: Any, config: RunConfig) -> ModelSpec:
    """Validate and analyse a graph (dict or ``layerlab.Graph``); raise RunSetupError if it cannot train."""
    from layerlab import analyze  # noqa: PLC0415

    return spec_from_analysis(analyze(graph, batch_size=config.data.batch_size, optimizer=config.optimizer.name),
                              config)


def spec_from_analysis(analysis: Any, config: RunConfig) -> ModelSpec:
    """The spec of a graph analysed once (``layerlab.analyze``): the model is built from its plan."""
    report = analysis.report  # parse errors come back in the report too, named by node
    if not report.valid or analysis.plan is None or analysis.graph is None:
        errors = [e.model_dump() for e in report.errors]
        first = errors[0] if errors else {"node": None, "message": "the graph is invalid", "suggestion": None}
        raise RunSetupError(
            f"the graph is invalid: {first['node'] or 'graph'}: {first['message']}",
            hint=first.get("suggestion") or "fix the errors shown on the canvas",
            node=first["node"],
            errors=errors,
        )
    parsed = analysis.graph
    if report.output_shape is None:
        raise RunSetupError("the graph has no output", hint="connect the last layer to an Output node")

    nodes = list(parsed.nodes)
    names: dict[str, str] = {}
    name_counts: dict[str, int] = {}
    for n in nodes:
        module_name = getattr(n, "name", None) or n.id
        name_counts[module_name] = name_counts.get(module_name, 0) + 1
    for n in nodes:
        module_name = getattr(n, "name", None) or n.id
        if name_counts[module_name] == 1:
            names[module_name] = n.id
        names.setdefault(n.id, n.id)
    input_node = next((n.id for n in nodes if n.op == "Input"), None)
    output_node = next((n.id for n in nodes if n.op == "Output"), None)
    head = next((e.source for e in parsed.edges if e.target == output_node), None)
    head_op = next((n.op for n in nodes if n.id == head), None)
    return ModelSpec(
        build=PlanBuilder(analysis.plan, config.init_arg(), config.seed),
        input_shape=list(report.input_shape),
        output_shape=list(report.output_shape),
        input_dtype=str(getattr(report, "input_dtype", "float32") or "float32"),
        node_names=names,
        frozen_nodes={n.id for n in nodes if getattr(n, "frozen", False)},
        input_node=input_node,
        head_node=head,
        head_op=head_op,
        graph=parsed.model_dump(mode="json"),
        memory_bytes=report.totals.memory.total_bytes if report.totals.memory is not None else None,
    )


def check_data(spec: ModelSpec, ds: ArrayDataset, loss: LossConfig) -> list[str]:
    """Check the graph against the dataset and the loss; raise with what to change, or return warnings."""
    sample_shape = list(ds.x.shape[1:])
    input_node = spec.input_node or "the Input node"
    if spec.input_shape != sample_shape:
        raise RunSetupError(
            f"{input_node}: the graph takes inputs of shape {_fmt(spec.input_shape)} but dataset "
            f"'{ds.name}' gives samples of shape {_fmt(sample_shape)}",
            hint=f"set {input_node}'s shape to {sample_shape}",
            node=spec.input_node,
            field="config.data",
        )
    head = spec.head_node or "the last layer"
    out = spec.output_shape
    warnings: list[str] = []
    if ds.task == "classification":
        k = ds.num_classes or 0
        if loss.name not in CLASSIFICATION_LOSSES:
            raise RunSetupError(
                f"loss '{loss.name}' is for regression but dataset '{ds.name}' is classification ({k} classes)",
                hint="use loss 'cross_entropy' (or 'bce_with_logits' for two classes)",
                field="config.loss",
            )
        if loss.name == "bce_with_logits":
            ok = out == [k] or (k == 2 and out == [1])
            want = "1 (or 2)" if k == 2 else str(k)
        else:
            ok = out == [k]
            want = str(k)
        if not ok:
            raise RunSetupError(
                f"{head}: the graph outputs {_fmt(out)} per sample but dataset '{ds.name}' has {k} classes, "
                f"so '{loss.name}' needs an output of ({want},)",
                hint=f"set {head}'s out_features to {want.split(' ')[0]}" if len(out) == 1 else
                f"end the graph with a Flatten and a Linear with out_features={want.split(' ')[0]}",
                node=spec.head_node,
                field="config.data",
            )
        if loss.name == "nll" and spec.head_op is not None and spec.head_op != "LogSoftmax":
            warnings.append(
                f"loss 'nll' expects log-probabilities but the graph ends with {spec.head_op} ({head}); "
                "add a LogSoftmax(dim=1) or use 'cross_entropy'"
            )
    else:
        target = list(ds.y.shape[1:])
        if loss.name in CLASSIFICATION_LOSSES:
            raise RunSetupError(
                f"loss '{loss.name}' is for classification but dataset '{ds.name}' is regression",
                hint="use loss 'mse', 'l1' or 'smooth_l1'",
                field="config.loss",
            )
        if out != target:
            raise RunSetupError(
                f"{head}: the graph outputs {_fmt(out)} per sample but dataset '{ds.name}' has regression "
                f"targets of shape {_fmt(target)}",
                hint=f"make {head} output {_fmt(target)}"
                + (f" (out_features={target[0]})" if len(target) == 1 else ""),
                node=spec.head_node,
                field="config.data",
            )
    return warnings


def check_run(graph: Any, config: RunConfig) -> list[str]:
    """Everything a run checks before training, without training: the graph, the dataset, and the
    two against each other. Raises RunSetupError (or DatasetError); returns warnings."""
    from .data import load_dataset  # noqa: PLC0415 - keeps this module light for importers

    spec = spec_from_graph(graph, config)
    return check_data(spec, load_dataset(config.data, seed=config.seed), config.loss)

