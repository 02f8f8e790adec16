"""How fast is shape inference? Prints figures; asserts nothing.

Times ``layerlab.infer`` on generated chains of 100, 1,000 and 10,000 layers (growth should be
linear: the per-layer time should stay flat), and compares the 1,000-layer case, measured in the
same run, with one forward pass of the built module at batch 1 on the CPU and with torchinfo's
summary of the same module (which needs a forward pass; the report needs none).

The report is timed as ``POST /api/graphs/report`` makes it (``shapes.report_json``: the JSON body
the editor sends, with canvas positions, in; the JSON report out), three ways:
- cold: a fresh memo, nothing seen before;
- cold in a used memo: a graph never seen, reported by a worker whose memo holds other graphs (a
  report worker's memo is never fresh after its first report: this is opening another project);
- after a one-node edit, the editor's case: one long-lived memo (as each report worker keeps), and
  each report changes one Linear's width in the middle of the chain (and back), so the nodes
  after it see new shapes;
- after a structural edit: the same memo, and each report has a new ReLU (a new id) inserted in
  the middle of the chain, a structure never reported before (the full walk, with the memo).
A last row times stage 1 alone, the body decoded and validated into the graph's models: no cold
report can be faster than that.
Goals: the full report of 1,000 layers in at most 10 ms, and at least 20× faster than torchinfo.

    python benchmarks/bench_shapes.py
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

from layerlab import build, infer
from layerlab.graph import Graph
from layerlab.memo import ShapeMemo
from layerlab.shapes import report_json

LAYER_KINDS = (
    {"op": "Linear", "params": {"out_features": 64}},
    {"op": "LayerNorm"},
    {"op": "ReLU"},
)


def chain(n_layers: int) -> dict[str, Any]:
    """Input [64] → n layers cycling Linear / LayerNorm / ReLU → Output."""
    nodes: list[dict[str, Any]] = [{"id": "x", "op": "Input", "params": {"shape": [64]}}]
    edges = []
    prev = "x"
    for i in range(n_layers):
        kind = LAYER_KINDS[i % len(LAYER_KINDS)]
        nid = f"n{i}"
        nodes.append({"id": nid, **kind})
        edges.append({"source": prev, "target": nid})
        prev = nid
    nodes.append({"id": "y", "op": "Output"})
    edges.append({"source": prev, "target": "y"})
    return {"format": "layerlab.graph/1", "name": f"chain{n_layers}", "nodes": nodes, "edges": edges}


def editor_body(g: dict[str, Any], *, width: int = 64) -> bytes:
    """The graph as the editor posts it: canvas positions, no spaces (JSON.stringify); the Linear in
    the middle of the chain set to ``width``."""
    g = json.loads(json.dumps(g))
    for i, n in enumerate(g["nodes"]):
        n["position"] = {"x": 250.0 * (i % 8), "y": 120.0 * (i // 8)}
    middle = next(n for n in g["nodes"][len(g["nodes"]) // 2:] if n["op"] == "Linear")
    middle["params"]["out_features"] = width
    return json.dumps(g, separators=(",", ":")).encode()


def with_new_layer(body: bytes, k: int) -> bytes:
    """``body`` with a ReLU ``r<k>`` inserted after the middle layer, as the editor sends it."""
    g = json.loads(body)
    middle = g["nodes"][len(g["nodes"]) // 2]
    g["nodes"].insert(len(g["nodes"]) // 2 + 1, {"id": f"r{k}", "op": "ReLU", "params": {},
                                                 "position": {"x": 0.0, "y": 0.0}})
    for e in g["edges"]:
        if e["source"] == middle["id"]:
            e["source"] = f"r{k}"
    g["edges"].append({"source": middle["id"], "target": f"r{k}"})
    return json.dumps(g, separators=(",", ":")).encode()


def best_of(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    os.environ.setdefault("LAYERLAB_MAX_NODES", "20000")
    print(f"{'layers':>8} {'infer (ms)':>12} {'µs / layer':>12}")
    per_layer = {}
    for n in (100, 1_000, 10_000):
        g = chain(n)
        assert infer(g).valid, "the generated chain must be valid"
        t = best_of(lambda g=g: infer(g), repeats=5 if n < 10_000 else 3)
        per_layer[n] = t / n
        print(f"{n:>8,} {t * 1e3:>12.2f} {t / n * 1e6:>12.2f}")
    growth = per_layer[10_000] / per_layer[100]
    print(f"per-layer cost 10,000 vs 100 layers: {growth:.2f}× (1.0 = perfectly linear)")

    import torch

    g = chain(1_000)
    model = build(g).eval()
    x = torch.randn(1, 64)
    with torch.inference_mode():
        model(x)  # warm-up
        t_fwd = best_of(lambda: model(x), repeats=5)
    t_inf = best_of(lambda: infer(g), repeats=5)
    print(f"1,000 layers: infer {t_inf * 1e3:.2f} ms, one forward pass at batch 1 {t_fwd * 1e3:.2f} ms, "
          f"ratio infer/forward = {t_inf / t_fwd:.2f}")

    body = editor_body(g)
    memo = ShapeMemo()
    edits = [editor_body(g, width=w) for w in (65, 64)]
    for b in edits:
        report_json(b, memo=memo)
    assert json.loads(report_json(edits[0], memo=memo)) == json.loads(infer(json.loads(edits[0])).model_dump_json())
    turn = iter(range(10**9))
    used = ShapeMemo()
    for k in range(3):  # other graphs of the same kinds of layers, with other ids
        other = json.loads(editor_body(chain(1_000)))
        for n in other["nodes"]:
            n["id"] = f"p{k}_{n['id']}"
        for e in other["edges"]:
            e["source"], e["target"] = f"p{k}_{e['source']}", f"p{k}_{e['target']}"
        report_json(json.dumps(other, separators=(",", ":")).encode(), memo=used)
    fresh_ids = iter(range(10**9))

    def never_seen() -> bytes:  # the same chain under new ids each time: its texts are new to the memo
        k = next(fresh_ids)
        return body.replace(b'"id":"n', f'"id":"q{k}_'.encode()).replace(b'"source":"n', f'"source":"q{k}_'.encode()
                                                                       ).replace(b'"target":"n', f'"target":"q{k}_'.encode())

    unseen = [never_seen() for _ in range(7 * 5 + 5)]
    assert json.loads(report_json(unseen[-1], memo=ShapeMemo()))["valid"]
    inserted = [with_new_layer(body, k) for k in range(7 * 5 + 1)]
    report_json(inserted.pop(), memo=memo)
    timed = {
        "cold (nothing seen before)": lambda: report_json(body),
        "cold in a used memo": lambda: report_json(unseen.pop(), memo=used),
        "after a one-node edit": lambda: report_json(edits[next(turn) % 2], memo=memo),
        "after a structural edit": lambda: report_json(inserted.pop(), memo=memo),
        "infer() (Python API, cold)": lambda: infer(g),
        # what the endpoint did before the memo: parse, infer, a Report model, serialize
        "before: infer + model_dump_json": lambda: infer(json.loads(body)).model_dump_json().encode(),
        # a floor for any cold report: stage 1 alone, the body decoded and every node and edge
        # validated by the graph's pydantic models in one call (the fastest way pydantic offers),
        # with nothing sized and nothing written
        "floor: stage 1 alone": lambda: Graph.model_validate_json(body),
    }
    try:
        from torchinfo import summary
    except ImportError:
        print("torchinfo is not installed (pip install torchinfo): no comparison")
        return
    # Rounds that time torchinfo and every report back to back, so that a change in the machine's
    # load (it is shared) moves both sides of each ratio; the figures are the medians over rounds.
    rounds: list[dict[str, float]] = []
    for _ in range(7):
        r = {"torchinfo": best_of(lambda: summary(model, input_size=(1, 64), verbose=0), repeats=1)}
        r |= {label: best_of(fn, repeats=5) for label, fn in timed.items()}
        rounds.append(r)
    t_ti = statistics.median(r["torchinfo"] for r in rounds)
    print(f"torchinfo summary of the same model: {t_ti * 1e3:.1f} ms (median of {len(rounds)} rounds)")
    print(f"{'1,000-layer report (API)':<34} {'ms':>7} {'× faster than torchinfo':>24}  goals ≤ 10 ms, ≥ 20×")
    for label in timed:
        t = statistics.median(r[label] for r in rounds)
        ratio = statistics.median(r["torchinfo"] / r[label] for r in rounds)
        met = f"{'met' if t <= 0.010 else 'NOT met'}, {'met' if ratio >= 20 else 'NOT met'}"
        print(f"{label:<34} {t * 1e3:>7.2f} {ratio:>24.1f}  {met}")


if __name__ == "__main__":
    main()
