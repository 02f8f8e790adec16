"""Stage 2, shapes and costs: every node's output shape, parameters, MACs and activation size,
from the catalog's integer formulas. No torch import here.

``analyze`` checks the graph's size limits, then walks it container by container (the top level,
then each Block's children), collects every error instead of stopping at the first, and produces
both the user-facing :class:`Report` and the :class:`~layerlab.plan.ModelPlan` the compiler turns
into modules. Its parts:

- ``structure``: ids, parents, nesting, the containers and their edges, order and reachability;
- ``walk``: each container's members sized in order, a Block once per copy;
- ``residual``: a residual Block's shortcut, identity or projection;
- ``ledger``: the errors and each node's costs as they are found, then the report's totals;
- ``report``: the report's models.

``report_json`` is the API's way in: the JSON body in, the JSON report out, and with a
:class:`~layerlab.memo.ShapeMemo` only what changed since an earlier report is redone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..graph import (
    FORMAT,
    Graph,
    GraphError,
    env_limit,
    expansion_error,
    nested_too_deeply,
    parse_graph,
    parse_graph_json,
)
from ..memo import ShapeMemo
from .report import NodeReport, OptimizerName, Report, Totals
from .structure import MAX_NESTING
from .walk import Analysis, Walk

DEFAULT_MAX_NODES = 5000


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
    with _no_cyclic_gc():
        try:
            return _analyze(graph, batch_size=batch_size, optimizer=optimizer, max_nodes=max_nodes,
                            max_instances=max_instances)
        except RecursionError:
            return Analysis(_too_deep(), None, None)


def report_json(body: bytes, *, batch_size: int = 32, optimizer: OptimizerName = "adam",
                memo: ShapeMemo | None = None) -> bytes:
    """``infer(json.loads(body))`` as JSON, for the API, without a pydantic model per node in between.

    With a ``memo`` (``memo.py``) it redoes only what changed since an earlier report: nodes whose
    text it has validated are not validated again, a shape rule is not rerun for the same node and
    inputs, and when the graph differs from one reported before only in some nodes' settings, only
    the top-level nodes those changes reach are walked again. The answer is the same as without the
    memo. Raises the graph-error 422 when ``body`` is not JSON."""
    with _no_cyclic_gc():
        try:
            return _report_json(body, batch_size=batch_size, optimizer=optimizer, memo=memo)
        except RecursionError:
            return _too_deep().model_dump_json().encode()


def _report_json(body: bytes, *, batch_size: int, optimizer: OptimizerName, memo: ShapeMemo | None) -> bytes:
    # Called with the GC off: what this function made is freed when it returns, before the GC comes
    # back on (alive then, the next collection would trace it all).
    if memo is None:  # a cold report: nothing seen before
        memo = ShapeMemo()
    parsed, errors = parse_graph_json(body, memo=memo)
    early = _early_report(parsed, errors, max_nodes=None, max_instances=None)
    if early is not None:
        return early.model_dump_json().encode()
    assert parsed is not None
    return Walk(parsed, batch_size=batch_size, optimizer=optimizer, memo=memo, plans=False).run_json()


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The walk allocates many small objects and frees none of them in cycles; the cyclic GC's full
    passes over a large heap would make big graphs cost more than linear time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _too_deep() -> Report:
    """The report of a graph nested past Python's recursion limit: an error, not an exception."""
    return Report(valid=False, errors=[nested_too_deeply()])


def _analyze(graph: Graph | dict[str, Any], *, batch_size: int, optimizer: OptimizerName,
             max_nodes: int | None, max_instances: int | None) -> Analysis:
    parsed, errors = parse_graph(graph)
    early = _early_report(parsed, errors, max_nodes=max_nodes, max_instances=max_instances)
    if early is not None:
        return Analysis(early, None, parsed)
    assert parsed is not None
    return Walk(parsed, batch_size=batch_size, optimizer=optimizer).run()


def _early_report(parsed: Graph | None, errors: list[GraphError], *, max_nodes: int | None,
                  max_instances: int | None) -> Report | None:
    """The report of a graph that is not walked: not a graph, too many nodes, too many instances."""
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


__all__ = ["DEFAULT_MAX_NODES", "FORMAT", "MAX_NESTING", "Analysis", "NodeReport", "OptimizerName", "Report",
           "Totals", "analyze", "infer", "report_json"]
