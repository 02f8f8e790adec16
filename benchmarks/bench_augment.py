"""How much does augmentation slow training? Prints figures; asserts nothing.

Trains examples/mnist_cnn.json on the 28×28 mnist set through the LayerLab trainer, with and
without ``data.augment`` = RandomCrop(padding=4) + RandomHorizontalFlip, alternating the two
several times in one process, and compares the median epoch time (each run's first epoch is
left out: it pays for warm-up). Also times the augmentation alone on one batch.
Goal: the augmented epoch at most 1.15× the plain one.

    python benchmarks/bench_augment.py [--repeats 3] [--epochs 3] [--threads 1] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from layerlab.train import DataConfig, RunConfig, train
from layerlab.train.augment import build_pipeline

ROOT = Path(__file__).resolve().parent.parent
FLIP_CROP = [{"op": "RandomCrop", "padding": 4}, {"op": "RandomHorizontalFlip"}]


def epoch_seconds(graph: dict[str, Any], *, augment: list[dict[str, Any]], epochs: int, batch_size: int) -> list[float]:
    events: list[Any] = []
    config = RunConfig(data=DataConfig(dataset="mnist", augment=augment, batch_size=batch_size), epochs=epochs,
                       layer_stats_every=0, step_event_interval_s=0.5)
    outcome = train(graph, config, emit=events.append)
    if outcome.status != "finished":
        raise SystemExit(f"the run did not finish: {outcome}")
    return [e.seconds for e in events if e.type == "epoch"][1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    graph = json.loads((ROOT / "examples" / "mnist_cnn.json").read_text(encoding="utf-8"))

    plain: list[float] = []
    augmented: list[float] = []
    for _ in range(args.repeats):  # alternating, so drift in the machine's speed hits both alike
        plain += epoch_seconds(graph, augment=[], epochs=args.epochs, batch_size=args.batch_size)
        augmented += epoch_seconds(graph, augment=FLIP_CROP, epochs=args.epochs, batch_size=args.batch_size)

    cfg = DataConfig(dataset="mnist", augment=FLIP_CROP)
    pipeline = build_pipeline(cfg.augment, [1, 28, 28])
    x = torch.rand(args.batch_size, 1, 28, 28)
    for _ in range(10):
        pipeline(x)
    t0 = time.perf_counter()
    for _ in range(100):
        pipeline(x)
    per_batch_ms = (time.perf_counter() - t0) / 100 * 1e3

    p, a = statistics.median(plain), statistics.median(augmented)
    steps = -(-4000 // args.batch_size)  # the training split: 4,000 of the 5,000 images
    print(f"mnist_cnn on mnist, batch {args.batch_size}, {args.threads} thread(s), torch {torch.__version__}")
    print(f"plain epoch        {p * 1e3:8.1f} ms  ({p / steps * 1e3:.2f} ms/step, {len(plain)} epochs)")
    print(f"flip + crop epoch  {a * 1e3:8.1f} ms  ({a / steps * 1e3:.2f} ms/step, {len(augmented)} epochs)")
    print(f"augmentation alone {per_batch_ms:8.2f} ms per batch ({per_batch_ms / (p / steps * 1e3):.1%} of a plain step)")
    ratio = a / p
    print(f"ratio augmented / plain: {ratio:.3f}  (goal <= 1.15: {'met' if ratio <= 1.15 else 'NOT met'})")


if __name__ == "__main__":
    main()
