"""One run on two CPU processes with DistributedDataParallel (gloo): layerlab.cluster.ddp.

The data-parallel run must train (its loss falls), match a one-process run of the same config
step for step (every batch splits evenly here, so the averaged gradient is the full batch's),
report through rank 0 only, and leave a checkpoint that loads into the one-process model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import layerlab
from helpers import chain
from layerlab.cluster.ddp import ShardedBatches, train_ddp
from layerlab.train import (
    RunConfig,
    is_terminal,
    load_dataset,
    prepare,
    read_weights,
    train,
)
from layerlab.train.checkpoint import load_weights_exact
from layerlab.train.data import TensorBatches

GRAPH = chain([2], ("Linear", {"out_features": 32}), ("ReLU", {}), ("Linear", {"out_features": 4}))
# blobs: 800 training samples in 25 batches of 32, so each of 2 ranks gets exactly 16 per step.
CONFIG: dict[str, Any] = {
    "data": {"dataset": "blobs", "n_samples": 1000, "batch_size": 32, "noise": 0.3},
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
    "epochs": 3,
    "seed": 3,
    "device": "cpu",
    "layer_stats_every": 0,
}


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], Any]:
    events: list[Any] = []
    terminal = train_ddp(GRAPH, CONFIG, emit=events.append, devices=2, run_id="ddp",
                         run_dir=tmp_path_factory.mktemp("ddp"), timeout_s=120)
    return events, terminal


@pytest.fixture(scope="module")
def single_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], Any]:
    events: list[Any] = []
    outcome = train(GRAPH, CONFIG, emit=events.append, run_id="single", run_dir=tmp_path_factory.mktemp("single"))
    return events, outcome


def test_sharded_batches_split_each_batch_disjointly() -> None:
    x = torch.arange(10, dtype=torch.float32)[:, None]  # (10, 1)
    y = torch.arange(10)
    def batches() -> TensorBatches:  # the same seed: the same order on every rank
        return TensorBatches(x, y, batch_size=4, shuffle=True, device=torch.device("cpu"), seed=0)

    ranks = [ShardedBatches(batches(), rank=r, world=3) for r in range(3)]
    assert len(ranks[0]) == 3
    per_rank = [list(r.epoch()) for r in ranks]
    for i, (_, full) in enumerate(batches().epoch()):
        parts = [per_rank[r][i][1] for r in range(3)]
        if len(full) < 3:  # the last batch of 2: every rank trains on all of it
            assert all(torch.equal(p, full) for p in parts)
        else:
            assert sorted(torch.cat(parts).tolist()) == sorted(full.tolist())


def test_ddp_trains_and_only_rank_zero_reports(ddp_run: tuple[list[Any], Any]) -> None:
    events, terminal = ddp_run
    types = [e.type for e in events]
    assert terminal.type == "run_finished", terminal
    assert types.count("run_started") == 1, "ranks other than 0 emit nothing"
    assert types.count("run_finished") == 1 and is_terminal(events[-1])
    assert [e.seq for e in events] == list(range(len(events)))
    started = next(e for e in events if e.type != "run_starting")
    assert started.type == "run_started"
    assert "ddp" in started.device and "x2" in started.device
    assert started.total_steps == 75 and started.steps_per_epoch == 25
    epochs = [e for e in events if e.type == "epoch"]
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert epochs[-1].train_loss < 0.5 * epochs[0].train_loss, [e.train_loss for e in epochs]
    assert epochs[-1].val_accuracy > 0.8
    assert sum(1 for e in events if e.type == "checkpoint") == 1


def test_ddp_matches_one_process(ddp_run: tuple[list[Any], Any], single_run: tuple[list[Any], Any]) -> None:
    _, terminal = ddp_run
    single_events, outcome = single_run
    assert outcome.status == "finished"
    ddp_weights = read_weights(terminal.checkpoint)
    single_weights = read_weights(outcome.checkpoint)
    assert ddp_weights.keys() == single_weights.keys()
    for name, w in single_weights.items():
        torch.testing.assert_close(ddp_weights[name], w, atol=1e-4, rtol=1e-4, msg=name)
    single_val = [e.val_loss for e in single_events if e.type == "epoch"]
    ddp_val = [e.val_loss for e in ddp_run[0] if e.type == "epoch"]
    assert ddp_val == pytest.approx(single_val, rel=1e-3)


def test_rank_zero_checkpoint_loads_into_the_single_process_model(ddp_run: tuple[list[Any], Any]) -> None:
    events, terminal = ddp_run
    cfg = RunConfig.model_validate(CONFIG)
    model = layerlab.build(GRAPH, seed=0)
    load_weights_exact(model, terminal.checkpoint)  # no 'module.' prefixes: the unwrapped model was saved
    data = prepare(load_dataset(cfg.data, seed=cfg.seed), cfg.data, seed=cfg.seed)
    model.eval()
    with torch.inference_mode():
        accuracy = (model(data.x_val).argmax(1) == data.y_val).float().mean().item()  # (N_val,)
    assert accuracy == pytest.approx(terminal.val_accuracy, abs=1e-6)


@pytest.mark.skipif(torch.cuda.device_count() >= 64, reason="this machine has 64 GPUs")
def test_too_many_gpus_fail_before_starting(tmp_path: Path) -> None:
    events: list[Any] = []
    terminal = train_ddp(GRAPH, {**CONFIG, "device": "cuda"}, emit=events.append, devices=64, run_dir=tmp_path)
    assert terminal.type == "run_failed"
    assert events == [terminal]
    assert "CUDA" in terminal.reason or "cuda" in terminal.reason
