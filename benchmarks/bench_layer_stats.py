"""Layer-panel overhead: the trainer's samples/s with per-layer statistics on (what the layer
panel's sparklines and the canvas tints are drawn from: gradient norm, weight norm, update ratio,
dead fraction every ``layer_stats_every`` steps; and after every epoch a layer snapshot, each
layer's output and weight histograms and feature maps on one validation sample) against the same
run with them off. The time runs to the last snapshot, so every snapshot is paid for.

Same model, data, seed and threads; the two are alternated ``--rounds`` times in one process and
the median ratio is printed. Goal: ≥ 0.97× (the statistics cost at most 3 %).

    .venv/bin/python benchmarks/bench_layer_stats.py [--rounds 5] [--epochs 20] [--every 50]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from typing import Any

import torch
from bench_train import graph, layerlab_rate, layerlab_run

from layerlab.train import RunConfig

GOAL = 0.97


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--every", type=int, default=50, help="layer_stats_every for the 'on' runs")
    parser.add_argument("--width", type=int, default=32, help="conv1's channels")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = graph(args.width)
    base = {"epochs": args.epochs, "device": "cpu", "optimizer": {"lr": 3e-3},
            "data": {"dataset": "digits", "batch_size": 64}}
    on = RunConfig.model_validate({**base, "layer_stats_every": args.every})
    off = RunConfig.model_validate({**base, "layer_stats_every": 0})
    layerlab_rate(g, on)  # warm-up
    ratios, shares = [], []
    for i in range(args.rounds):
        (with_stats, events), without = layerlab_run(g, on), layerlab_rate(g, off)
        ratios.append(with_stats / without)
        shares.append(snapshot_share(events))
        print(f"  round {i + 1}: statistics every {args.every} steps + snapshots {with_stats:,.0f} samples/s, "
              f"off {without:,.0f} samples/s, ratio {with_stats / without:.3f}; "
              f"snapshots {shares[-1] * 100:.2f} % of the run")
    median = statistics.median(ratios)
    print(f"threads {args.threads}, batch 64, conv1 width {args.width}, {args.epochs} epochs per measurement")
    print(f"layer snapshots (one per epoch, {snapshot_bytes(events):,} bytes of JSON each): median "
          f"{statistics.median(shares) * 100:.2f} % of the run's time")
    print(f"median ratio with / without layer statistics and snapshots: {median:.3f}× (goal ≥ {GOAL}×: "
          f"{'met' if median >= GOAL else 'NOT met'})")


def snapshot_share(events: list[Any]) -> float:
    """The share of the run (run_started → last snapshot) spent taking snapshots: each one's time
    from the epoch event it follows."""
    started = next(e for e in events if e.type == "run_started")
    taken = 0.0
    for before, event in itertools.pairwise(events):
        if event.type == "layer_snapshot":
            assert before.type == "epoch", before.type
            taken += event.time - before.time
    end = [e for e in events if e.type in ("epoch", "layer_snapshot")][-1]
    return taken / (end.time - started.time)


def snapshot_bytes(events: list[Any]) -> int:
    return len(next(e for e in reversed(events) if e.type == "layer_snapshot").model_dump_json())


if __name__ == "__main__":
    main()
