"""The trainer in-process: learning, freezing, BatchNorm statistics, modes, events, stop/resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from helpers import repeated_block_mlp, started_event
from layerlab import build
from layerlab.train import (
    Control,
    ModelSpec,
    RunConfig,
    RunSetupError,
    check_run,
    read_weights,
    train,
    train_spec,
)
from layerlab.train.events import Event
from layerlab.train.stats import StepBuffer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _node(node_id: str, op: str, parent: str | None = None, frozen: bool = False, **params: Any) -> dict[str, Any]:
    n: dict[str, Any] = {"id": node_id, "op": op, "params": params}
    if parent:
        n["parent"] = parent
    if frozen:
        n["frozen"] = True
    return n


def _chain(*nodes: dict[str, Any]) -> dict[str, Any]:
    """A graph whose nodes are connected in the order given."""
    edges = [{"source": a["id"], "target": b["id"]} for a, b in zip(nodes, nodes[1:], strict=False)]
    return {"format": "layerlab.graph/1", "nodes": list(nodes), "edges": edges}


def digits_cnn(*, frozen_bn1: bool = True, frozen_conv1: bool = False, classes: int = 10,
               shape: list[int] | None = None) -> dict[str, Any]:
    return _chain(
        _node("x", "Input", shape=shape or [1, 8, 8]),
        _node("conv1", "Conv2d", frozen=frozen_conv1, out_channels=8, kernel_size=3, padding="same"),
        _node("bn1", "BatchNorm2d", frozen=frozen_bn1),
        _node("relu1", "ReLU"),
        _node("conv2", "Conv2d", out_channels=8, kernel_size=3, padding="same"),
        _node("bn2", "BatchNorm2d"),
        _node("relu2", "ReLU"),
        _node("flat", "Flatten"),
        _node("fc", "Linear", out_features=classes),
        _node("y", "Output"),
    )


def mlp(*, in_features: int = 2, classes: int = 4, dropout: float = 0.2) -> dict[str, Any]:
    return _chain(
        _node("x", "Input", shape=[in_features]),
        _node("fc1", "Linear", out_features=32),
        _node("bn", "BatchNorm1d"),
        _node("act", "ReLU"),
        _node("drop", "Dropout", p=dropout),
        _node("fc2", "Linear", out_features=classes),
        _node("y", "Output"),
    )


def _run(graph: dict[str, Any], cfg: dict[str, Any], tmp_path: Path, **kw: Any) -> list[Event]:
    events: list[Event] = []
    train(graph, RunConfig.model_validate(cfg), emit=events.append, run_dir=tmp_path / "run", **kw)
    return events


def _of(events: list[Event], kind: str) -> list[Any]:
    return [e for e in events if e.type == kind]


def _points(events: list[Event]) -> list[tuple[int, float]]:
    return [p for e in _of(events, "step") for p in e.points]


BLOBS = {"data": {"dataset": "blobs", "n_samples": 300, "batch_size": 32}, "layer_stats_every": 0}


def test_loss_decreases_on_digits_with_a_small_cnn(tmp_path: Path) -> None:
    events = _run(digits_cnn(), {"epochs": 3, "optimizer": {"lr": 3e-3}, "layer_stats_every": 10}, tmp_path)
    assert [(e.type, getattr(e, "phase", None)) for e in events[:3]] == [
        ("run_starting", "data"), ("run_starting", "model"), ("run_started", None)]  # why it waits, then go
    assert events[-1].type == "run_finished"
    assert [e.seq for e in events] == list(range(len(events)))
    epochs = _of(events, "epoch")
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert epochs[-1].train_loss < epochs[0].train_loss * 0.7
    assert epochs[-1].val_accuracy > 0.8
    started = started_event(events)
    assert started.dataset.name == "digits" and started.dataset.num_classes == 10
    assert started.model.output_shape == [10]
    assert started.model.params_frozen == 16 and started.model.frozen == ["bn1.weight", "bn1.bias"]
    stats = _of(events, "layer_stats")
    assert stats and {s.node for s in stats[0].layers} == {"conv1", "conv2", "bn2", "fc", "relu1", "relu2"}
    relu = next(s for s in stats[0].layers if s.node == "relu1")
    assert relu.dead_fraction is not None and 0.0 <= relu.dead_fraction <= 1.0
    conv = next(s for s in stats[0].layers if s.node == "conv1")
    assert conv.grad_norm > 0 and conv.weight_norm > 0 and 0 < conv.update_ratio < 1


def test_every_step_loss_arrives_despite_coalescing(tmp_path: Path) -> None:
    events = _run(mlp(), {**BLOBS, "epochs": 2, "step_event_interval_s": 0.0}, tmp_path / "a")
    steps = [s for s, _ in _points(events)]
    total = started_event(events).total_steps
    assert steps == list(range(1, total + 1))
    # A long interval: far fewer events, still every point.
    slow = _run(mlp(), {**BLOBS, "epochs": 2, "step_event_interval_s": 5.0}, tmp_path / "b")
    assert len(_of(slow, "step")) <= 4 < len(_of(events, "step"))  # flushed at each epoch's end
    assert [s for s, _ in _points(slow)] == steps
    assert [v for _, v in _points(slow)] == [v for _, v in _points(events)]


def test_step_buffer_drains_every_point_in_one_read() -> None:
    buf = StepBuffer(interval_s=3600)
    buf.add(1, torch.tensor(0.1), batch_size=8)
    assert buf.due(), "the first step goes out at once"
    assert buf.drain()[0] == [(1, pytest.approx(0.1))]
    for step in range(2, 7):
        buf.add(step, torch.tensor(float(step) / 10), batch_size=8)
    assert not buf.due() and len(buf) == 5, "after it, steps are coalesced"
    points, rate = buf.drain()
    assert points == [(2, pytest.approx(0.2)), (3, pytest.approx(0.3)), (4, pytest.approx(0.4)),
                      (5, pytest.approx(0.5)), (6, pytest.approx(0.6))]
    assert rate > 0 and len(buf) == 0 and buf.drain() == ([], 0.0)
    eager = StepBuffer(interval_s=0.0)
    eager.add(1, torch.tensor(1.0), 1)
    assert eager.due()


def test_frozen_params_do_not_move_and_bn_stats_stay(tmp_path: Path) -> None:
    graph = digits_cnn(frozen_bn1=True, frozen_conv1=True)
    events = _run(graph, {"epochs": 1, "optimizer": {"weight_decay": 0.1, "lr": 1e-2}}, tmp_path)
    assert events[-1].type == "run_finished"
    start = build(graph, seed=0).state_dict()
    end = read_weights(events[-1].checkpoint)
    for name in ("conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"):
        assert torch.equal(start[name], end[name]), name
    assert end["bn1.num_batches_tracked"] == 0
    for name in ("conv2.weight", "bn2.weight", "bn2.running_mean", "fc.weight"):
        assert not torch.equal(start[name], end[name]), name
    groups = started_event(events).param_groups
    listed = [n for g in groups for n in g.params]
    assert not any(n.startswith(("conv1.", "bn1.")) for n in listed)
    assert started_event(events).model.frozen_bn == ["bn1"]


def test_unfrozen_bn_stats_move_when_switch_is_off(tmp_path: Path) -> None:
    graph = digits_cnn(frozen_bn1=True)
    events = _run(graph, {"max_steps": 3, "freeze_bn_stats": False}, tmp_path)
    end = read_weights(events[-1].checkpoint)
    start = build(graph, seed=0).state_dict()
    assert not torch.equal(start["bn1.running_mean"], end["bn1.running_mean"])
    assert torch.equal(start["bn1.weight"], end["bn1.weight"])  # the parameters stay frozen


class _ModeSpy(nn.Module):
    """Records (training, inference_mode, frozen BN training flag) at every forward."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen_bn = nn.BatchNorm1d(4).requires_grad_(False)
        self.fc = nn.Linear(4, 3)
        self.calls: list[tuple[bool, bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_inference_mode_enabled(), self.frozen_bn.training))
        return self.fc(self.frozen_bn(x))


def test_validation_runs_in_eval_and_inference_mode(tmp_path: Path) -> None:
    spy = _ModeSpy()
    spec = ModelSpec(build=lambda: spy, input_shape=[4], output_shape=[3])
    events: list[Event] = []
    train_spec(spec, RunConfig(data={"dataset": "iris", "batch_size": 40}, epochs=2, layer_stats_every=0),
               emit=events.append, run_dir=tmp_path)
    assert events[-1].type == "run_finished"
    training = [c for c in spy.calls if not c[1]]
    validating = [c for c in spy.calls if c[1]]
    assert training and validating
    assert all(c == (True, False, False) for c in training)  # frozen BN stays in eval in both epochs
    assert all(c[0] is False for c in validating)
    assert spy.training  # the model is back in train mode after validation


@pytest.mark.parametrize("loader", ["tensor", "dataloader"])
def test_resume_after_stop_matches_an_uninterrupted_run(tmp_path: Path, loader: str) -> None:
    cfg = {**BLOBS, "data": {**BLOBS["data"], "loader": loader}, "epochs": 3, "optimizer": {"name": "adamw", "weight_decay": 0.05},
           "schedule": {"name": "cosine", "warmup_steps": 3}, "step_event_interval_s": 0.0}
    full = _run(mlp(), cfg, tmp_path / "full")
    assert full[-1].type == "run_finished"

    class StopAt(Control):
        def stop_requested(self, step: int) -> bool:
            return step >= 11  # in the middle of epoch 2

    first = _run(mlp(), cfg, tmp_path / "first", control=StopAt())
    stopped = first[-1]
    assert stopped.type == "run_stopped" and stopped.step == 11 and stopped.epoch == 1
    assert _of(first, "checkpoint")[-1].reason == "stop"
    second = _run(mlp(), cfg, tmp_path / "second", resume_from=stopped.checkpoint)
    assert started_event(second).start_step == 11 and second[-1].type == "run_finished"

    expected = _points(full)
    assert _points(first) == expected[:11]
    assert _points(second) == expected[11:]  # exactly equal floats, not approximately
    assert [e.val_loss for e in _of(second, "epoch")] == [e.val_loss for e in _of(full, "epoch")][1:]
    assert _of(second, "epoch")[0].train_loss == _of(full, "epoch")[1].train_loss


def test_max_steps_and_partial_epoch(tmp_path: Path) -> None:
    events = _run(mlp(), {**BLOBS, "epochs": None, "max_steps": 10}, tmp_path)
    finished = events[-1]
    assert finished.type == "run_finished" and finished.reason == "max_steps" and finished.step == 10
    epochs = _of(events, "epoch")
    assert [e.partial for e in epochs] == [False, True]


def test_early_stopping(tmp_path: Path) -> None:
    cfg = {**BLOBS, "epochs": 50, "patience": 1, "min_delta": 10.0}  # nothing counts as improvement
    events = _run(mlp(), cfg, tmp_path)
    assert events[-1].reason == "early_stopping"
    assert len(_of(events, "epoch")) == 2  # the first sets the best, the second fails to beat it


def test_input_shape_mismatch_says_what_to_change(tmp_path: Path) -> None:
    events = _run(digits_cnn(shape=[1, 28, 28]), {"epochs": 1}, tmp_path)
    assert [e.type for e in events] == ["run_starting", "run_failed"]  # failed while loading the data
    failed = events[-1]
    assert "(1, 28, 28)" in failed.reason and "(1, 8, 8)" in failed.reason and "digits" in failed.reason
    assert failed.hint == "set x's shape to [1, 8, 8]" and failed.node == "x"


def test_output_size_mismatch_says_what_to_change(tmp_path: Path) -> None:
    events = _run(digits_cnn(classes=5), {"epochs": 1}, tmp_path)
    failed = events[-1]
    assert failed.type == "run_failed" and failed.node == "fc"
    assert "(5)" in failed.reason and "10 classes" in failed.reason
    assert failed.hint == "set fc's out_features to 10"


def test_loss_task_mismatch_and_invalid_graph(tmp_path: Path) -> None:
    events = _run(digits_cnn(), {"epochs": 1, "loss": {"name": "mse"}}, tmp_path / "a")
    assert events[-1].type == "run_failed" and "cross_entropy" in events[-1].hint
    broken = digits_cnn()
    broken["nodes"][1]["params"].update(kernel_size=99, padding=0)
    events = _run(broken, {"epochs": 1}, tmp_path / "b")
    assert events[-1].type == "run_failed" and events[-1].node == "conv1" and events[-1].errors


def test_all_frozen_fails_with_hint(tmp_path: Path) -> None:
    graph = mlp()
    for n in graph["nodes"]:
        n["frozen"] = True
    events = _run(graph, {**BLOBS, "epochs": 1}, tmp_path)
    assert events[-1].type == "run_failed" and "unfreeze" in events[-1].hint


def test_nan_loss_fails_the_run(tmp_path: Path) -> None:
    path = tmp_path / "nan.npz"
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    x[5, 0] = np.nan
    np.savez(path, x=x, y=np.arange(64) % 4)
    cfg = {"data": {"dataset": "upload", "upload": {"path": str(path)}, "val_split": 0.0}, "epochs": 1,
           "layer_stats_every": 0}
    events = _run(mlp(), cfg, tmp_path)
    assert events[-1].type == "run_failed" and "NaN" in events[-1].reason and "learning rate" in events[-1].hint


def test_fine_tune_from_another_run(tmp_path: Path) -> None:
    base = _run(digits_cnn(frozen_bn1=False), {"max_steps": 5}, tmp_path / "base")
    ckpt = base[-1].checkpoint
    # New run: conv1 frozen, a different head (5 classes on a regression? no: 10 classes, new fc size).
    graph = digits_cnn(frozen_bn1=False, frozen_conv1=True)
    tuned = _run(graph, {"max_steps": 5}, tmp_path / "tuned", init_from=ckpt)
    assert tuned[-1].type == "run_finished"
    before, after = read_weights(ckpt), read_weights(tuned[-1].checkpoint)
    assert torch.equal(before["conv1.weight"], after["conv1.weight"])  # loaded, then frozen
    assert not torch.equal(before["conv2.weight"], after["conv2.weight"])  # loaded, then trained
    fresh = build(graph, seed=0).state_dict()
    assert not torch.equal(fresh["conv1.weight"], after["conv1.weight"])


def test_fine_tune_with_a_new_head_warns(tmp_path: Path) -> None:
    base = _run(mlp(classes=4), {**BLOBS, "max_steps": 3}, tmp_path / "base")
    tuned = _run(mlp(in_features=2, classes=3),
                 {**BLOBS, "data": {**BLOBS["data"], "num_classes": 3}, "max_steps": 3},
                 tmp_path / "tuned", init_from=base[-1].checkpoint)
    warnings = [e.message for e in _of(tuned, "warning")]
    assert any("fc2.weight" in w and "shapes differ" in w for w in warnings)
    assert tuned[-1].type == "run_finished"


def test_resume_with_a_different_graph_is_refused(tmp_path: Path) -> None:
    base = _run(mlp(), {**BLOBS, "max_steps": 2}, tmp_path / "base")
    wider = mlp()
    wider["nodes"][1]["params"]["out_features"] = 64
    events = _run(wider, {**BLOBS, "max_steps": 4}, tmp_path / "again", resume_from=base[-1].checkpoint)
    assert events[-1].type == "run_failed"
    assert "does not match this graph" in events[-1].reason and "fc1.weight" in events[-1].reason
    assert "fine-tune" in events[-1].hint


def test_regression_on_diabetes(tmp_path: Path) -> None:
    graph = _chain(
        _node("x", "Input", shape=[10]),
        _node("fc1", "Linear", out_features=32),
        _node("act", "ReLU"),
        _node("fc2", "Linear", out_features=1),
        _node("y", "Output"),
    )
    cfg = {"data": {"dataset": "diabetes", "batch_size": 32}, "loss": {"name": "mse"}, "epochs": 8,
           "optimizer": {"lr": 3e-3}, "layer_stats_every": 0}
    events = _run(graph, cfg, tmp_path)
    epochs = _of(events, "epoch")
    assert events[-1].type == "run_finished"
    assert epochs[-1].train_accuracy is None and epochs[-1].val_accuracy is None
    assert epochs[-1].val_loss < 0.8  # standardized targets: predicting the mean scores 1.0


def test_conv1d_on_signals(tmp_path: Path) -> None:
    graph = _chain(
        _node("x", "Input", shape=[1, 64]),
        _node("conv1", "Conv1d", out_channels=8, kernel_size=7, padding=3),
        _node("act1", "ReLU"),
        _node("pool", "MaxPool1d", kernel_size=4),
        _node("flat", "Flatten"),
        _node("fc", "Linear", out_features=10),
        _node("y", "Output"),
    )
    cfg = {"data": {"dataset": "signals", "n_samples": 600, "batch_size": 32}, "epochs": 6,
           "optimizer": {"lr": 3e-3}, "layer_stats_every": 0}
    events = _run(graph, cfg, tmp_path)
    assert events[-1].type == "run_finished", events[-1]
    assert _of(events, "epoch")[-1].val_accuracy > 0.5  # chance is 0.1


def test_check_run_before_submitting() -> None:
    assert check_run(mlp(), RunConfig.model_validate({**BLOBS, "epochs": 1})) == []
    with pytest.raises(RunSetupError) as info:
        check_run(mlp(classes=3), RunConfig.model_validate({**BLOBS, "epochs": 1}))
    assert info.value.node == "fc2" and info.value.hint == "set fc2's out_features to 4"
    nll = RunConfig.model_validate({**BLOBS, "epochs": 1, "loss": {"name": "nll"}})
    assert "LogSoftmax" in check_run(mlp(), nll)[0]


def test_layer_stats_name_nodes_inside_repeated_blocks(tmp_path: Path) -> None:
    graph = repeated_block_mlp()
    events = _run(graph, {**BLOBS, "max_steps": 2, "layer_stats_every": 1}, tmp_path)
    layers = _of(events, "layer_stats")[0].layers
    assert sorted((s.node, s.path) for s in layers) == [
        ("act", "blk.0.act"), ("act", "blk.1.act"), ("fc1", "blk.0.fc1"), ("fc1", "blk.1.fc1"), ("head", "head"),
    ]


def test_init_scheme_reaches_the_compiler() -> None:
    from layerlab.train import spec_from_graph

    zeros = spec_from_graph(mlp(), RunConfig.model_validate({**BLOBS, "epochs": 1, "init": "zeros"})).build()
    assert torch.count_nonzero(zeros.get_submodule("fc1").weight) == 0
    normal = RunConfig.model_validate({**BLOBS, "epochs": 1, "init": {"scheme": "normal", "std": 0.5}})
    weight = spec_from_graph(mlp(), normal).build().get_submodule("fc1").weight
    assert 0.4 < float(weight.detach().std()) < 0.6
