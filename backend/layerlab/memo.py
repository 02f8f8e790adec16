"""What the shapes stage remembers between edits.

The editor sends the whole graph after every change, and almost all of it is what it sent a
moment ago. A :class:`ShapeMemo` lets the next report (``shapes.report_json``) skip the work whose
inputs did not change:

- a node whose JSON text was validated before is not validated again, nor the edges when the
  text of the whole edge list was;
- a node's shape rule is not run again for the same validated node and the same input shapes
  (shape rules are pure functions of their params and inputs);
- a graph with the same node ids as one reported before, differing only in some nodes' settings,
  is walked again only from what changed: a top-level member keeps its results when neither it,
  nor anything inside it, nor its inputs changed.

The size limits and the totals run every time; the structure checks are reused only when nothing
but settings changed. A report made with a memo is the report made without one (``tests/test_memo.py`` checks this over random edits). Every table
is LRU-bounded. One memo belongs to one process (each report worker has its own, ``offload.py``)
and is not thread-safe.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

DEFAULT_MAX_ENTRIES = 20_000  # per table of nodes and of rule results: four 5,000-node graphs, some tens of MB
DEFAULT_MAX_WALKS = 8  # graphs whose walk and whose edge list are kept (each up to LAYERLAB_MAX_NODES nodes)


class LRU(Generic[K, V]):
    """A dict that forgets its least recently used entries past ``max_entries``."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, received {max_entries}")
        self.max_entries = max_entries
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        if key in self._data:
            self._data.move_to_end(key)
        self._data[key] = value  # a new key goes to the end
        if len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def get_all(self, items: list[tuple[K, Any]], make: Callable[[Any], V]) -> list[V]:
        """For each ``(key, raw)``: the value under ``key``, or ``make(raw)``, stored under it.
        (One call for a whole list: the hot path of a report, thousands of items.)"""
        data, touch = self._data, self._data.move_to_end
        found: list[V] = []
        for key, raw in items:
            value = data.get(key)
            if value is None:
                value = make(raw)
                self.put(key, value)
            else:
                touch(key)
            found.append(value)
        return found

    def __len__(self) -> int:
        return len(self._data)


class ShapeMemo:
    """The tables described in the module docstring, each bounded."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_walks: int = DEFAULT_MAX_WALKS) -> None:
        # JSON text of a node -> the validated node; of a graph's edge list -> the validated list
        self.nodes: LRU[str, Any] = LRU(max_entries)
        self.edges: LRU[str, list[Any]] = LRU(4 * max_walks)
        # (id(validated node), *input TensorInfos) -> (the validated node, its Inferred)
        self.rules: LRU[tuple[Any, ...], tuple[Any, Any]] = LRU(max_entries)
        # the graph's node ids in order -> what its last valid walk left (shapes._Walked)
        self.walks: LRU[tuple[str, ...], Any] = LRU(max_walks)
