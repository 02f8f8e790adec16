"""A report worker's life: its answer times over many reports, and the cyclic GC's pauses in them.

A report worker keeps its memo between jobs (``offload.py``); once full it holds hundreds of
thousands of objects, and a full collection of the cyclic GC traced them all. The worker now moves
them to the GC's permanent generation after each report (``offload._settle``). This compares, in
the same run, a worker's job as it is now (``offload.report_json``) with the same job without that
step (``shapes.report_json`` through one long-lived memo, which the job was before), each in a
fresh process, alternated ``--rounds`` times.

The work: 1,200 reports, most of them edits of one of 12 graphs of 300 layers (a Linear's width
changed), every 20th the opening of a 1,000-layer graph never seen. A job's time runs from the
request's body unpickled to the answer pickled, as the worker receives and sends them; the bodies
are made before the first job, so that a collection falls in a job, as it does in a worker that
does nothing between jobs, and every collection's pause is counted too. Goal: no pause of the GC over 10 ms in a worker's life
(before: one or two full collections of 100 ms and more per run).

    .venv/bin/python benchmarks/bench_report_worker.py [--rounds 2] [--jobs 1200]
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_shapes import chain, editor_body  # noqa: E402

GOAL_MS = 10.0


def renamed(g: dict[str, Any], prefix: str) -> dict[str, Any]:
    g = json.loads(json.dumps(g))
    for n in g["nodes"]:
        n["id"] = f"{prefix}_{n['id']}"
    for e in g["edges"]:
        e["source"], e["target"] = f"{prefix}_{e['source']}", f"{prefix}_{e['target']}"
    return g


def life(variant: str, jobs: int) -> dict[str, Any]:
    """One worker's jobs, in this process: ``now`` (the worker's job) or ``before`` (without its
    last step)."""
    from layerlab import offload
    from layerlab.memo import ShapeMemo
    from layerlab.shapes import report_json

    if variant == "now":
        offload._warm()  # as the pool starts a worker
    memo = ShapeMemo()

    def job(body: bytes) -> bytes:
        if variant == "now":
            return offload.report_json(body, 32, "adam")
        return report_json(body, batch_size=32, optimizer="adam", memo=memo)

    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], time.perf_counter() - started[0]))

    rng = random.Random(1)
    small = [renamed(json.loads(editor_body(chain(300))), f"g{k}") for k in range(12)]
    big = json.loads(editor_body(chain(1_000)))
    work: list[tuple[bytes, bool]] = []  # made first: between its jobs a worker allocates next to nothing
    for i in range(jobs):
        if i % 20 == 19:
            work.append((json.dumps(renamed(big, f"o{i}"), separators=(",", ":")).encode(), True))
        else:
            g = small[rng.randrange(len(small))]
            rng.choice([n for n in g["nodes"] if n["op"] == "Linear"])["params"]["out_features"] = rng.randint(8, 128)
            work.append((json.dumps(g, separators=(",", ":")).encode(), False))
    del small, big
    edits: list[float] = []
    opens: list[float] = []
    gc.callbacks.append(on_gc)
    for body, is_open in work:
        t0 = time.perf_counter()
        pickle.dumps(job(pickle.loads(pickle.dumps(body))))  # the body as the pool hands it over
        (opens if is_open else edits).append(time.perf_counter() - t0)
        time.sleep(0.001)  # the worker waits for its next job
    gc.callbacks.remove(on_gc)
    return {"edits": edits, "opens": opens, "pauses": pauses}


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1200)
    parser.add_argument("--variant", choices=["now", "before"], help=argparse.SUPPRESS)  # one life, as JSON
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(life(args.variant, args.jobs)))
        return
    results: dict[str, list[dict[str, Any]]] = {"before": [], "now": []}
    for _ in range(args.rounds):
        for variant in results:
            out = subprocess.run([sys.executable, __file__, "--variant", variant, "--jobs", str(args.jobs)],
                                 check=True, capture_output=True, text=True).stdout
            results[variant].append(json.loads(out))
    print(f"{args.jobs} reports per worker life, {args.rounds} lives each, alternated")
    print(f"{'':>8} {'edit p50':>9} {'p99':>7} {'max':>7} {'open p50':>9} {'max':>7}  "
          f"{'GC pauses > 10 ms':>17} {'longest':>8}  (ms)")
    longest: dict[str, float] = {}
    for variant, lives in results.items():
        for r in lives:
            worst = max((t for _, t in r["pauses"]), default=0.0) * 1e3
            longest[variant] = max(longest.get(variant, 0.0), worst)
            print(f"{variant:>8} {quantile(r['edits'], .5):>9.2f} {quantile(r['edits'], .99):>7.2f} "
                  f"{quantile(r['edits'], 1):>7.1f} {quantile(r['opens'], .5):>9.2f} {quantile(r['opens'], 1):>7.1f}  "
                  f"{sum(t > GOAL_MS / 1e3 for _, t in r['pauses']):>17} {worst:>8.1f}")
    med = {v: statistics.median(quantile(r["edits"], .5) for r in lives) for v, lives in results.items()}
    print(f"edit median now / before: {med['now'] / med['before']:.2f}×; longest GC pause now / before: "
          f"{longest['now'] / max(longest['before'], 1e-9):.3f}× "
          f"({'met' if longest['now'] <= GOAL_MS else 'NOT met'}: goal no pause over {GOAL_MS:.0f} ms)")


if __name__ == "__main__":
    main()
