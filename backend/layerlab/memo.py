"""What the shapes stage remembers between edits.

The editor sends the whole graph after every change, and almost all of it is what it sent a
moment ago. A :class:`ShapeMemo` lets the next report (``shapes.report_json``) skip the work whose
inputs did not change:

- a node whose JSON text was validated before is not decoded or validated again, nor the edges
  when the text of the whole edge list was;
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

    def put(self, key: K, value: V, *, new: bool = False) -> None:
        """Store ``value`` as the most recent; ``new``: the caller has just seen ``key`` missing."""
        data = self._data
        if not new and key in data:
            data.move_to_end(key)
        data[key] = value  # a new key goes to the end
        if len(data) > self.max_entries:
            data.popitem(last=False)

    def get_all(self, items: list[tuple[K, Any]], make: Callable[[list[tuple[K, Any]]], list[V]]) -> list[V]:
        """For each ``(key, raw)``: the value under ``key``, or else what ``make`` gives for it,
        stored under it. ``make`` is called once, on all the missing items. (One call for a whole
        list: the hot path of a report, thousands of items.)"""
        data, touch = self._data, self._data.move_to_end
        found: list[Any] = []
        missing: list[int] = []
        for key, _raw in items:
            value = data.get(key)
            if value is None:
                missing.append(len(found))
            else:
                touch(key)
            found.append(value)
        if missing:
            for index, value in zip(missing, make([items[k] for k in missing]), strict=True):
                found[index] = value
                self.put(items[index][0], value, new=True)
        return found

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: K) -> bool:
        return key in self._data


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
