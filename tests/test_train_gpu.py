"""The trainer on CUDA: mixed precision, channels_last, device placement, resume. Skipped without a GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from helpers import started_event
from layerlab.train import RunConfig, read_state, train
from layerlab.train.control import Control
from layerlab.train.events import Event

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _cnn() -> dict[str, Any]:
    specs = [
        ("x", "Input", {"shape": [1, 8, 8]}),
        ("conv1", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": "same"}),
        ("bn1", "BatchNorm2d", {}),
        ("relu1", "ReLU", {}),
        ("flat", "Flatten", {}),
        ("fc", "Linear", {"out_features": 10}),
        ("y", "Output", {}),
    ]
    nodes = [{"id": i, "op": op, "params": p} for i, op, p in specs]
    edges = [{"source": a[0], "target": b[0]} for a, b in zip(specs, specs[1:], strict=False)]
    return {"format": "layerlab.graph/1", "nodes": nodes, "edges": edges}


def _run(cfg: dict[str, Any], tmp_path: Path, **kw: Any) -> list[Event]:
    events: list[Event] = []
    train(_cnn(), RunConfig.model_validate({"layer_stats_every": 5, **cfg}), emit=events.append,
          run_dir=tmp_path, **kw)
    return events


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_precisions_train_on_cuda(tmp_path: Path, precision: str) -> None:
    events = _run({"device": "cuda", "precision": precision, "epochs": 3, "optimizer": {"lr": 3e-3}}, tmp_path)
    assert events[-1].type == "run_finished", events[-1]
    started = started_event(events)
    assert started.device == "cuda:0"
    assert started.precision in (precision, "fp16")  # bf16 falls back to fp16 on old GPUs
    epochs = [e for e in events if e.type == "epoch"]
    assert epochs[-1].train_loss < epochs[0].train_loss and epochs[-1].val_accuracy > 0.7
    state = read_state(events[-1].checkpoint)
    assert (state["scaler"] is not None) == (started.precision == "fp16")


def test_channels_last_and_auto_device(tmp_path: Path) -> None:
    events = _run({"device": "auto", "channels_last": True, "epochs": 2}, tmp_path)
    assert events[-1].type == "run_finished"
    assert started_event(events).device.startswith("cuda")
    assert not [e for e in events if e.type == "warning"]


def test_resume_on_cuda_continues_the_run(tmp_path: Path) -> None:
    cfg = {"device": "cuda", "epochs": 2, "step_event_interval_s": 0.0}

    class StopAt(Control):
        def stop_requested(self, step: int) -> bool:
            return step >= 7

    first = _run(cfg, tmp_path / "a", control=StopAt())
    assert first[-1].type == "run_stopped" and first[-1].step == 7
    second = _run(cfg, tmp_path / "b", resume_from=first[-1].checkpoint)
    assert started_event(second).start_step == 7 and second[-1].type == "run_finished"
    steps = [s for e in second if e.type == "step" for s, _ in e.points]
    assert steps[0] == 8 and steps[-1] == second[0].total_steps
