"""Stage 1, the format: the JSON graph the editor emits, as pydantic models.

A graph is a DAG of nodes and edges in the shape React Flow uses. Every node is typed by its
``op``: the node union is discriminated on ``op`` and each member carries that op's own params
model from the catalog, so unknown params and wrong types are caught here, per node.
Blocks are nodes too; their children name them in ``parent`` (flat list, nested by reference).
See docs/graph-format.md.
"""

from __future__ import annotations

import json
import keyword
import os
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from .memo import ShapeMemo
from .ops import get_op, op_names, suggest_op

FORMAT = "layerlab.graph/1"
# Layer instances a graph may expand to once every Block's repeat is multiplied out (nested
# repeats multiply: 31 nested blocks of repeat 2 would be 2^31 copies). LAYERLAB_MAX_INSTANCES.
DEFAULT_MAX_INSTANCES = 20_000

NodeId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="Unique id; also the module's attribute name (so it must be a Python identifier).",
    ),
]
ModuleName = Annotated[
    str,
    Field(
        pattern=r"^([A-Za-z_][A-Za-z0-9_-]{0,63}|[0-9]{1,6})$",
        description="Attribute name inside the parent module when it differs from the id "
        "(e.g. '0' for an imported nn.Sequential index, or 'block1-0', a name torch allows that is not an "
        "identifier: the module is reached by getattr).",
    ),
]

# Names a submodule cannot take: Python keywords and the attributes every nn.Module has.
# tests/test_graph.py checks this list against dir(torch.nn.Module).
RESERVED_NAMES = frozenset(keyword.kwlist) | frozenset(
    ["T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "smart_apply", "state_dict", "to", "to_empty", "train", "training", "type", "xpu", "zero_grad"]
)
# Also the attributes of the containers a node is built into: nn.Sequential (a chain, a block) and
# fx.GraphModule (a region with branches), whose add_module refuses them or whose methods they hide.
RESERVED_NAMES |= frozenset(
    ["append", "extend", "insert", "pop", "add_submodule", "code", "delete_all_unused_submodules",
     "delete_submodule", "graph", "meta", "print_readable", "recompile", "shape_env", "to_folder"]
) | {"self"}  # forward()'s own first argument, in fx's generated code and in to_python's

InitScheme = Literal[
    "default", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "orthogonal", "normal", "zeros"
]


class InitSpec(BaseModel):
    """Weight initialization for a node, a block, or the whole model. A bare string is a scheme."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheme: InitScheme = Field("default", description="'default' keeps torch's own initialization.")
    std: Annotated[float, Field(gt=0, le=10)] = Field(0.02, description="Standard deviation for 'normal'.")
    nonlinearity: Literal["relu", "leaky_relu", "linear", "tanh", "sigmoid", "selu"] = Field(
        "relu", description="The activation that follows, for kaiming's gain."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"scheme": value} if isinstance(value, str) else value


# A dataclass, not a model: every node of every report has one, and a dataclass validates in less time.
@dataclass(config=ConfigDict(extra="forbid"))
class Position:
    x: float
    y: float


class NodeBase(BaseModel):
    """Fields every node has, whatever its op."""

    model_config = ConfigDict(extra="forbid")

    id: NodeId
    parent: NodeId | None = Field(None, description="The Block this node belongs to.")
    name: ModuleName | None = None
    label: Annotated[str, Field(max_length=200)] | None = Field(None, description="A user label.")
    frozen: bool = Field(False, description="requires_grad=False for its parameters (a block: all inside).")
    init: InitSpec | None = Field(None, description="Initialization override for this node.")
    position: Position | None = Field(None, description="Canvas position (the editor's, ignored here).")

    @field_validator("id", "name")
    @classmethod
    def _not_reserved(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value in RESERVED_NAMES:
            raise ValueError(f"{info.field_name} {value!r} is reserved (a Python keyword or an nn.Module attribute)")
        return value

    @property
    def module_name(self) -> str:
        return self.name or self.id


def _node_model(op: str) -> type[NodeBase]:
    params_model = get_op(op).params_model
    required = any(f.is_required() for f in params_model.model_fields.values())
    if required:
        params_field: tuple[Any, Any] = (params_model, ...)
    else:  # params are frozen: every node that leaves them out shares one instance of the defaults
        defaults = params_model()
        params_field = (params_model, Field(default_factory=lambda: defaults))
    return create_model(
        f"{op}Node",
        __base__=NodeBase,
        __doc__=get_op(op).help,
        op=(Literal[op], ...),
        params=params_field,
    )


NODE_MODELS: dict[str, type[NodeBase]] = {op: _node_model(op) for op in op_names()}
Node = Annotated[Union[tuple(NODE_MODELS.values())], Field(discriminator="op")]  # noqa: UP007


@dataclass(config=ConfigDict(extra="forbid"), kw_only=True)  # a dataclass, as Position: one per edge in every report
class Edge:
    """A connection ``source → target``. For a Block: ``block → child`` feeds the block's input to
    the child, ``child → block`` marks the child's output as the block's output."""

    id: Annotated[str, Field(max_length=200)] | None = None
    source: NodeId
    target: NodeId
    sourceHandle: Annotated[str, Field(max_length=100)] | None = None  # noqa: N815  (React Flow's name)
    targetHandle: Annotated[str, Field(max_length=100)] | None = None  # noqa: N815


class Graph(BaseModel):
    """A LayerLab graph (format ``layerlab.graph/1``)."""

    model_config = ConfigDict(extra="forbid", title="LayerLabGraph")

    format: Literal["layerlab.graph/1"] = FORMAT
    name: Annotated[str, Field(max_length=200)] = "model"
    description: Annotated[str, Field(max_length=2000)] | None = Field(
        None, description="What the model is for, in a sentence or two (the template gallery shows it)."
    )
    nodes: list[Node]
    edges: list[Edge] = Field(default_factory=list)

    def node(self, node_id: str) -> Any:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)


class GraphError(BaseModel):
    """One problem in a graph, pointed at the node (and field) it concerns."""

    model_config = ConfigDict(extra="forbid")

    node: str | None = Field(None, description="The node id, or None for the whole graph.")
    field: str | None = Field(None, description="The parameter or field concerned, e.g. 'kernel_size'.")
    message: str
    suggestion: str | None = None
    fix: dict[str, Any] | None = Field(
        None, description="A mechanical fix the editor can apply, e.g. {'action': 'insert_before', 'op': 'Flatten'}."
    )
    kind: Literal["error", "unconnected"] = Field(
        "error",
        description="'unconnected': the node is not wired up yet (no input, unused output, missing inputs); "
        "the editor shows a hint while a person is still building. 'error': shapes or parameters are wrong.",
    )


class GraphInvalidError(ValueError):
    """The graph has errors; ``errors`` lists them, each naming its node."""

    def __init__(self, errors: list[GraphError]) -> None:
        self.errors = errors
        lines = [f"- {e.message}" + (f" ({e.suggestion})" if e.suggestion else "") for e in errors]
        super().__init__("the graph is invalid:\n" + "\n".join(lines))

    def __reduce__(self) -> tuple[Any, ...]:  # raised in a worker process, re-raised in the server
        return (type(self), (self.errors,))


_GRAPH_ADAPTER = TypeAdapter(Graph)


def graph_json_schema() -> dict[str, Any]:
    return Graph.model_json_schema()


_EDGES_ADAPTER = TypeAdapter(list[Edge])


def parse_graph(data: Any) -> tuple[Graph | None, list[GraphError]]:
    """Validate raw JSON data into a Graph, or return every error found, named by node."""
    if isinstance(data, Graph):
        return data, []
    try:
        return _GRAPH_ADAPTER.validate_python(data), []
    except ValidationError as exc:
        return None, translate_errors(exc, data)


def load_json(body: bytes | str) -> Any:
    """``json.loads``, or the graph-error 422 when the body is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        raise GraphInvalidError([GraphError(message="the request body is not valid JSON",
                                            suggestion="send the graph as a JSON object")]) from None
    except RecursionError:  # valid JSON, nested deeper than the decoder recurses
        raise GraphInvalidError([nested_too_deeply()]) from None


def nested_too_deeply() -> GraphError:
    """The error of a graph nested past Python's recursion limit (a parameter holding lists in lists
    thousands deep, say), wherever reading or analysing it gives up."""
    return GraphError(message="the graph is nested too deeply")


def parse_graph_json(body: bytes, *, memo: ShapeMemo) -> tuple[Graph | None, list[GraphError]]:
    """``parse_graph(load_json(body))``, validating only what was not validated before: the memo
    keeps validated nodes by the exact text of each node (so ``1`` and ``true``, equal in Python, are
    told apart), and the validated edges by the text of the whole array (edges change only when a
    connection is drawn or removed; nodes whenever one is moved or set). A text seen before is not
    even decoded again."""
    try:
        text = body.decode()
    except UnicodeDecodeError:  # json.loads also reads UTF-16 and UTF-32
        return parse_graph(load_json(body))
    split = split_graph_text(text, known=memo.nodes.__contains__ if len(memo.nodes) else None,
                             known_edges=memo.edges.__contains__)
    if split is None:
        return parse_graph(load_json(body))
    top, node_items, edges = split
    try:
        graph = _GRAPH_ADAPTER.validate_python({**top, "nodes": []} | ({"edges": []} if edges is not None else {}))
        graph.nodes = memo.nodes.get_all(node_items, _validate_nodes)
        if edges is not None:
            graph.edges = memo.edges.get_all([edges], _validate_edge_lists)[0]
    except ValidationError:  # report every error, named as parse_graph names them
        return parse_graph(load_json(body))
    return graph, []


_NODES_ADAPTER: TypeAdapter[list[Any]] = TypeAdapter(list[Node])


def _validate_nodes(items: list[tuple[str, Any]]) -> list[Any]:
    """The validated nodes of ``(text, value)`` items, a value None decoded from its text; one call
    into pydantic-core for them all."""
    return _NODES_ADAPTER.validate_python([json.loads(t) if v is None else v for t, v in items])


def _validate_edge_lists(items: list[tuple[str, Any]]) -> list[list[Any]]:
    return [_EDGES_ADAPTER.validate_python(json.loads(t) if v is None else v) for t, v in items]


_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
# How JSON.stringify writes the editor's nodes: no spaces, each one's id first. The text of a
# node is looked for up to the next of these (at most _ITEM_WINDOW characters on) before decoding.
_BETWEEN_NODES = '},{"id":'
_ITEM_WINDOW = 4096

Known = Callable[[str], bool]


def split_graph_text(text: str, *, known: Known | None = None, known_edges: Known | None = None
                     ) -> tuple[dict[str, Any], list[tuple[str, Any]], tuple[str, Any] | None] | None:
    """A JSON object's members, parsed as ``json.loads`` parses them, but its ``nodes`` array as
    (text, value) per item and its ``edges`` array as (text, value) of the whole; None when the text
    is anything else (``nodes`` missing or not an array, not an object, not JSON).

    ``known(t)`` / ``known_edges(t)``: whether a node's / the edge array's text was seen before, as a
    whole JSON value. Such a text is not decoded: its value is given as None. (Only texts of whole
    values are ever known, so a candidate found by searching for the next separator is a whole
    item exactly when it is known: JSON values are prefix-free.)"""
    ws = _WS.match
    top: dict[str, Any] = {}
    arrays: dict[str, Any] = {}
    try:
        i = ws(text, 0).end()
        if text[i:i + 1] != "{":
            return None
        i = ws(text, i + 1).end()
        if text[i:i + 1] == "}":
            return None
        while True:
            if text[i:i + 1] != '"':
                return None
            key, i = json.decoder.scanstring(text, i + 1)
            i = ws(text, i).end()
            if text[i:i + 1] != ":":
                return None
            i = ws(text, i + 1).end()
            if key == "nodes" and text[i:i + 1] == "[":
                arrays[key], i = _array_items(text, i, known)
                top.pop(key, None)
            elif key == "edges" and text[i:i + 1] == "[":
                end = text.find("]", i) + 1
                if known_edges is not None and end and known_edges(candidate := text[i:end]):
                    arrays[key], i = (candidate, None), end
                else:
                    value, end = _DECODER.raw_decode(text, i)
                    arrays[key], i = (text[i:end], value), end
                top.pop(key, None)
            else:
                top[key], i = _DECODER.raw_decode(text, i)
                arrays.pop(key, None)  # a repeated key: the last one counts, as in json.loads
            i = ws(text, i).end()
            c = text[i:i + 1]
            if c == "}":
                break
            if c != ",":
                return None
            i = ws(text, i + 1).end()
        if ws(text, i + 1).end() != len(text) or "nodes" not in arrays or "edges" in top:
            return None
    except (ValueError, RecursionError):
        return None
    return top, arrays["nodes"], arrays.get("edges")


def _array_items(text: str, i: int, known: Known | None) -> tuple[list[tuple[str, Any]], int]:
    # the hot loop of a report: a known item costs a search and a lookup, any other one call into
    # the C decoder; whitespace is skipped only if there is any
    ws, decode, blank, find = _WS.match, _DECODER.raw_decode, " \t\n\r", text.find
    items: list[tuple[str, Any]] = []
    i = ws(text, i + 1).end()
    if text[i:i + 1] == "]":
        return items, i + 1
    while True:
        if known is not None:
            m = find(_BETWEEN_NODES, i, i + _ITEM_WINDOW)
            if m == -1:
                known = None  # not written as the editor writes it: decode the rest
            elif known(candidate := text[i:m + 1]):
                items.append((candidate, None))
                i = m + 2
                continue
        value, end = decode(text, i)
        items.append((text[i:end], value))
        c = text[end:end + 1]
        if c in blank:
            end = ws(text, end).end()
            c = text[end:end + 1]
        if c == "]":
            return items, end + 1
        if c != ",":
            raise ValueError("expected , or ]")
        i = end + 1
        if text[i:i + 1] in blank:
            i = ws(text, i).end()


def translate_errors(exc: ValidationError, data: Any) -> list[GraphError]:
    """Turn pydantic ``loc`` paths such as ('nodes', 3, 'Conv2d', 'params', 'kernel_size') into
    node ids and field names, with the value that was received. The alternatives of one union
    field (``int | [int, int]``) are merged into one error."""
    grouped: dict[tuple[str | None, str | None], GraphError] = {}
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        node_id: str | None = None
        raw: Any = None
        prefix = ""
        if len(loc) >= 2 and loc[0] in ("nodes", "edges") and isinstance(loc[1], int):
            kind, index = loc[0], loc[1]
            items = data.get(kind) if isinstance(data, dict) else None
            raw = items[index] if isinstance(items, list) and index < len(items) else None
            if kind == "nodes" and isinstance(raw, dict) and isinstance(raw.get("id"), str):
                node_id = raw["id"]
                prefix = f"{node_id}: "  # name the node, as the analysis's messages do
            else:
                prefix = f"{kind}[{index}]: "
            rest = [str(p) for p in loc[2:]]
            if kind == "nodes" and rest and rest[0] in NODE_MODELS:
                rest = rest[1:]  # the union tag pydantic inserts
        else:
            rest = [str(p) for p in loc]
        # drop the names of union alternatives ('constrained-int', 'tuple[int, int]', 'literal[...]')
        rest = [p for p in rest if not _UNION_MEMBER.search(p)]
        if rest[:1] == ["params"] and len(rest) > 1:
            rest = rest[1:]
        field_name = ".".join(rest) or None
        op = raw.get("op") if isinstance(raw, dict) else None
        suggestion = None
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            guess = suggest_op(op) if isinstance(op, str) else None
            message = f"unknown op {op!r}" if op is not None else "node has no 'op'"
            suggestion = f"did you mean {guess!r}?" if guess else "see GET /api/catalog for the ops"
            field_name = "op"
        elif err["type"] == "extra_forbidden" and loc[-2:-1] == ("params",) or (
            err["type"] == "extra_forbidden" and len(loc) > 2 and loc[-2] == "params"
        ):
            known = list(get_op(op).params_model.model_fields) if op in NODE_MODELS else []
            message = f"{op} has no parameter {loc[-1]!r}"
            if known:
                suggestion = "known parameters: " + ", ".join(known)
        elif err["type"] == "missing":
            message = f"{field_name} is required"
        else:
            message = f"{field_name + ': ' if field_name else ''}{_clean(err['msg'])}"
        key = (node_id, field_name)
        if key in grouped and err["type"] not in ("union_tag_invalid", "extra_forbidden", "missing"):
            grouped[key].message = grouped[key].message.removesuffix(grouped[key].suggestion or "")
            first = grouped[key].message.split("; received ")[0]
            grouped[key].message = f"{first}, or {_clean(err['msg']).lower()}; received {_shown(err.get('input'))}"
            continue
        if err["type"] not in ("union_tag_invalid", "union_tag_not_found", "missing", "extra_forbidden"):
            message += f"; received {_shown(err.get('input'))}"
        grouped[key] = GraphError(node=node_id, field=field_name, message=prefix + message, suggestion=suggestion)
    return list(grouped.values())


_UNION_MEMBER = re.compile(r"[\[\]-]|^(int|str|float|bool|none|list|tuple|dict)$")


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _shown(received: Any) -> str:
    shown = repr(received)
    return shown if len(shown) <= 80 else shown[:77] + "..."


# ---------------------------------------------------------------------------------------------
# Expanded size: checked before anything expands a repeat


def expanded_sizes(graph: Graph) -> tuple[int, dict[str, int]]:
    """How many node instances the graph expands to (each node counted once per copy of every
    Block around it), and for each Block the instances its own copies hold (its repeat included).

    Pure arithmetic on the parent links, so it costs O(nodes × nesting) however large the
    product is. A missing parent or a parent loop counts as the top level: the analysis reports
    those itself."""
    nested = [n for n in graph.nodes if n.parent is not None]
    total = len(graph.nodes) - len(nested)  # a top-level node is one instance
    inside: dict[str, int] = {}  # block id -> instances of everything in its copies
    if not nested:
        return total, inside
    by_id: dict[str, Any] = {}
    for n in graph.nodes:
        by_id.setdefault(n.id, n)
    for n in nested:
        # the Blocks around n, innermost first
        chain, seen, cur = [], {n.id}, n.parent
        while cur is not None and cur not in seen and cur in by_id and by_id[cur].op == "Block":
            seen.add(cur)
            chain.append(by_id[cur])
            cur = by_id[cur].parent
        copies = 1
        for block in chain:  # innermost outwards: each Block multiplies what lies inside it
            copies *= block.params.repeat
            inside[block.id] = inside.get(block.id, 0) + copies
        total += copies
    return total, inside


def expansion_error(graph: Graph, limit: int | None = None) -> GraphError | None:
    """An error naming the outermost Block whose repeats make the graph expand past ``limit``
    (default LAYERLAB_MAX_INSTANCES), or None when it fits."""
    limit = limit or max_instances()
    total, inside = expanded_sizes(graph)
    if total <= limit:
        return None
    blocks = {n.id: n for n in graph.nodes if n.op == "Block"}

    def multiplied_above(block: Any) -> bool:
        seen, cur = {block.id}, block.parent
        while cur in blocks and cur not in seen:
            if blocks[cur].params.repeat > 1:
                return True
            seen.add(cur)
            cur = blocks[cur].parent
        return False

    outermost = [b for b in blocks.values() if b.params.repeat > 1 and not multiplied_above(b)]
    hint = "lower the repeat of this block or of the blocks nested in it, or raise LAYERLAB_MAX_INSTANCES"
    if not outermost:
        return GraphError(message=f"the graph expands to {total:,} layer instances, above the limit of {limit:,}",
                          suggestion="raise LAYERLAB_MAX_INSTANCES")
    worst = max(outermost, key=lambda b: inside.get(b.id, 0))
    return GraphError(
        node=worst.id,
        field="repeat",
        message=f"{worst.id}: repeat={worst.params.repeat} with the blocks nested in it expands to "
        f"{inside.get(worst.id, 0):,} layer instances; the whole graph to {total:,}, above the limit of {limit:,}",
        suggestion=hint,
    )


def max_instances() -> int:
    return env_limit("LAYERLAB_MAX_INSTANCES", DEFAULT_MAX_INSTANCES)


def env_limit(name: str, default: int) -> int:
    """A size limit from the environment, or ``default`` when it is unset or not a positive integer
    (a misconfigured server must still answer with reports, not exceptions)."""
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default
