"""Trainer benchmark: samples/s of LayerLab's trainer against a hand-written PyTorch loop.

Both train the same model (the demo CNN on the 8×8 digits, compiled by LayerLab into the same
``nn.Module`` a person would write), on the same prepared tensors, batch size, optimizer and
torch threads, for the same epochs with a validation pass after each. The trainer runs with
everything a server run has on: step events (coalesced), per-layer statistics every 50 steps,
epoch events, checkpoints. The two are alternated ``--rounds`` times in one process and the
median ratio of samples/s is printed. Goal: ≥ 0.97×.

    .venv/bin/python benchmarks/bench_train.py [--rounds 5] [--epochs 5] [--width 32]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import torch
from torch import nn

from layerlab import build
from layerlab.api.demo import demo_graph
from layerlab.train import RunConfig, load_dataset, prepare, train

GOAL = 0.97


def graph(width: int) -> dict[str, Any]:
    g = demo_graph()
    for node in g["nodes"]:
        if node["id"] == "conv1":
            node["params"]["out_channels"] = width
    return g


def layerlab_rate(g: dict[str, Any], config: RunConfig) -> float:
    """Samples per second of the trainer's loop: from run_started to the last epoch event (or the
    layer snapshot that follows it, which is part of the epoch's cost)."""
    return layerlab_run(g, config)[0]


def layerlab_run(g: dict[str, Any], config: RunConfig) -> tuple[float, list[Any]]:
    """:func:`layerlab_rate` and the run's events."""
    events: list[Any] = []
    with tempfile.TemporaryDirectory() as run_dir:
        outcome = train(g, config, emit=events.append, run_dir=run_dir)
    assert outcome.status == "finished", outcome
    started = next(e for e in events if e.type == "run_started")
    end = [e for e in events if e.type in ("epoch", "layer_snapshot")][-1]
    samples = started.dataset.n_train * config.epochs  # every training sample, every epoch
    return samples / (end.time - started.time), events


def hand_rate(g: dict[str, Any], config: RunConfig) -> float:
    """The loop a person would write around the same module and tensors."""
    data = prepare(load_dataset(config.data, seed=config.seed), config.data, seed=config.seed)
    x_train, y_train, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val
    torch.manual_seed(config.seed)
    model = build(g, seed=config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optimizer.lr)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(config.seed)
    bs = config.data.batch_size
    started = time.perf_counter()
    for _ in range(config.epochs or 1):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(order), bs):
            idx = order[i:i + bs]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            correct = 0
            for i in range(0, len(x_val), bs):
                correct += (model(x_val[i:i + bs]).argmax(1) == y_val[i:i + bs]).sum().item()
        accuracy = correct / len(x_val)
    assert accuracy > 0.5, accuracy  # it did learn
    return len(x_train) * (config.epochs or 1) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--width", type=int, default=32, help="conv1's channels")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = graph(args.width)
    config = RunConfig.model_validate({"epochs": args.epochs, "device": "cpu", "optimizer": {"lr": 3e-3},
                                       "data": {"dataset": "digits", "batch_size": 64}})
    assert config.layer_stats_every, "the benchmark measures the trainer with its statistics on"
    layerlab_rate(g, config)  # warm-up: first-touch allocations, lazy kernels
    ratios = []
    for i in range(args.rounds):
        ours, hand = layerlab_rate(g, config), hand_rate(g, config)
        ratios.append(ours / hand)
        print(f"  round {i + 1}: LayerLab {ours:,.0f} samples/s, hand-written {hand:,.0f} samples/s, "
              f"ratio {ours / hand:.3f}")
    median = statistics.median(ratios)
    print(f"threads {args.threads}, batch 64, conv1 width {args.width}, {args.epochs} epochs per measurement")
    print(f"median ratio LayerLab / hand-written: {median:.3f}× (goal ≥ {GOAL}×: "
          f"{'met' if median >= GOAL else 'NOT met'})")


if __name__ == "__main__":
    main()
