"""Layout of an imported graph: left to right, container by container (children are placed
relative to their block), in the editor's box sizes."""

from __future__ import annotations

from typing import Any

# The editor's box sizes (frontend/src/graph/kinds.ts), for a left-to-right layout.
LAYER_SIZE = (190, 72)
COLLAPSED_BLOCK = (220, 84)
BLOCK_PAD = {"x": 24, "top": 56, "bottom": 20}
GAP = (60, 30)  # between columns, between boxes in a column


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
