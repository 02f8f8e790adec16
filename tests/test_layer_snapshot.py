"""Layer snapshots: what each layer makes of one validation sample, checked against torch itself
(the trained weights from the run's checkpoint, the sample, and forward hooks set here)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import chain, node, repeated_block_mlp
from layerlab import build
from layerlab.train import RunConfig, load_dataset, prepare, read_weights, train
from layerlab.train.events import Event, FeatureMaps, Histogram, LayerSnapshotEvent
from layerlab.train.stats import (
    SNAPSHOT_BINS,
    SNAPSHOT_CHANNELS,
    SNAPSHOT_LAYERS,
    SNAPSHOT_SIDE,
    OutputProbe,
    feature_maps,
    histogram,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def conv_net() -> dict[str, Any]:
    """(1, 8, 8) → conv with 20 channels (more than a snapshot shows) → BN → ReLU → Linear."""
    return chain(
        (1, 8, 8),
        node("conv1", "Conv2d", out_channels=20, kernel_size=3, padding="same"),
        node("bn1", "BatchNorm2d"),
        node("relu1", "ReLU"),
        node("flat", "Flatten"),
        node("fc", "Linear", out_features=10),
    )


def pixels(maps: FeatureMaps) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(maps.pixels), dtype=np.uint8)
    return raw.reshape(len(maps.lo), maps.height, maps.width)


def assert_histogram_of(h: Histogram, values: torch.Tensor) -> None:
    values = values.detach().float().flatten()
    assert (h.lo, h.hi) == (values.min().item(), values.max().item())
    expected = torch.histc(values, bins=SNAPSHOT_BINS, min=values.min().item(), max=values.max().item())
    assert h.counts == [int(c) for c in expected.tolist()]
    assert sum(h.counts) == values.numel() and h.nonfinite == 0


def assert_maps_of(maps: FeatureMaps, out: torch.Tensor) -> None:
    """``out`` is (C, H, W) at the size the tiles are drawn."""
    shown = out[:SNAPSHOT_CHANNELS].float()
    lo = shown.amin(dim=(1, 2))
    hi = shown.amax(dim=(1, 2))
    assert maps.lo == lo.tolist() and maps.hi == hi.tolist()
    expected = ((shown - lo[:, None, None]) / (hi - lo)[:, None, None] * 255).numpy()
    drawn = pixels(maps).astype(np.float64)
    assert np.abs(drawn - expected).max() <= 0.5 + 1e-3  # rounded to the nearest grey level
    assert drawn.min() == 0 and drawn.max() == 255


def test_snapshot_matches_torch_on_the_validation_sample(tmp_path: Path) -> None:
    graph = conv_net()
    cfg = RunConfig.model_validate({"epochs": 1, "optimizer": {"lr": 3e-3}, "layer_stats_every": 10,
                                    "data": {"dataset": "digits", "batch_size": 64}})
    events: list[Event] = []
    train(graph, cfg, emit=events.append, run_dir=tmp_path / "run")
    assert events[-1].type == "run_finished"
    [snap] = [e for e in events if isinstance(e, LayerSnapshotEvent)]
    epoch = next(e for e in events if e.type == "epoch")
    assert snap.seq == epoch.seq + 1 and snap.step == epoch.step and snap.epoch == 1
    assert (snap.split, snap.sample) == ("val", 0)
    assert [layer.node for layer in snap.layers] == ["conv1", "bn1", "relu1", "flat", "fc"]

    # The reference: the trained weights, the same validation sample, torch's own forward hooks.
    model = build(graph)
    model.load_state_dict(read_weights(events[-1].checkpoint))
    model.eval()
    data = prepare(load_dataset(cfg.data, seed=cfg.seed), cfg.data, seed=cfg.seed)
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Any:
        def hook(_module: nn.Module, _inputs: Any, out: torch.Tensor) -> None:
            seen[name] = out[0].clone()

        return hook

    for name in ("conv1", "bn1", "relu1", "fc"):
        getattr(model, name).register_forward_hook(keep(name))
    with torch.no_grad():
        model(data.x_val[:1])
    layer = {v.node: v for v in snap.layers}

    conv = layer["conv1"]
    assert conv.shape == [20, 8, 8] and conv.maps is not None
    assert (conv.maps.channels, len(conv.maps.lo), conv.maps.height, conv.maps.width) == (20, SNAPSHOT_CHANNELS, 8, 8)
    assert_maps_of(conv.maps, seen["conv1"])
    assert_histogram_of(conv.output, seen["conv1"])
    assert_histogram_of(conv.weights, model.conv1.weight)

    assert_maps_of(layer["relu1"].maps, seen["relu1"])
    assert layer["relu1"].weights is None
    assert_histogram_of(layer["bn1"].weights, model.bn1.weight)  # BatchNorm's weight is its gamma

    fc = layer["fc"]
    assert fc.shape == [10] and fc.maps is None
    assert_histogram_of(fc.output, seen["fc"])
    assert_histogram_of(fc.weights, model.fc.weight)


def test_snapshots_follow_the_statistics_setting(tmp_path: Path) -> None:
    base = {"epochs": 2, "data": {"dataset": "blobs", "n_samples": 200, "batch_size": 50, "val_split": 0}}
    mlp = chain((2,), ("Linear", {"out_features": 8}), ("ReLU", {}), ("Linear", {"out_features": 4}))
    events: list[Event] = []
    train(mlp, RunConfig.model_validate({**base, "layer_stats_every": 5}), emit=events.append, run_dir=tmp_path / "a")
    snaps = [e for e in events if e.type == "layer_snapshot"]
    assert [(s.epoch, s.split) for s in snaps] == [(1, "train"), (2, "train")]  # no validation split
    events.clear()
    train(mlp, RunConfig.model_validate({**base, "layer_stats_every": 0}), emit=events.append, run_dir=tmp_path / "b")
    assert events[-1].type == "run_finished" and not [e for e in events if e.type == "layer_snapshot"]


def test_large_maps_are_averaged_down_and_capped() -> None:
    torch.manual_seed(0)
    out = torch.randn(40, 128, 96)
    maps = feature_maps(out)
    assert (maps.channels, len(maps.lo), maps.height, maps.width, maps.source_size) == (40, 16, 32, 24, (128, 96))
    assert_maps_of(maps, F.avg_pool2d(out[None], kernel_size=4)[0])  # 128×96 → 32×24: 4×4 averages
    assert len(base64.b64decode(maps.pixels)) == SNAPSHOT_CHANNELS * 32 * 24


def test_a_snapshot_stays_small_whatever_the_model() -> None:
    """300 conv layers with 64 channels at 96×96: at most 64 layers, 16 channels of 32×32 each."""
    layers = [nn.Conv2d(3 if i == 0 else 64, 64, 3, padding=1) for i in range(300)]
    model = nn.Sequential(*layers).eval()
    probe = OutputProbe(model, lambda path: f"conv{path}", {})
    views = probe.take(model, torch.randn(1, 3, 96, 96))
    assert len(views) == SNAPSHOT_LAYERS
    size = sum(len(v.model_dump_json()) for v in views)
    assert size < SNAPSHOT_LAYERS * (4 * SNAPSHOT_CHANNELS * SNAPSHOT_SIDE**2 / 3 + 4000)


def test_histogram_counts_nan_and_inf_apart() -> None:
    h = histogram(torch.tensor([0.0, 1.0, float("nan"), float("inf"), 2.0]))
    assert (h.lo, h.hi, sum(h.counts), h.nonfinite) == (0.0, 2.0, 3, 2)
    assert histogram(torch.tensor([float("nan")])).counts == [0] * SNAPSHOT_BINS


def test_a_block_is_looked_at_through_its_layers() -> None:
    from layerlab.train import spec_from_graph

    graph = repeated_block_mlp()
    spec = spec_from_graph(graph, RunConfig.model_validate({"epochs": 1}))
    model = spec.build().eval()
    probe = OutputProbe(model, spec.node_for_path, spec.node_names)
    # Not the block itself, and one copy per node: the first.
    assert [(n, p) for n, p, _ in probe.layers] == [("fc1", "blk.0.fc1"), ("act", "blk.0.act"), ("head", "head")]
    views = probe.take(model, torch.randn(1, 2))
    assert [v.shape for v in views] == [[8], [8], [4]]


def test_a_failing_snapshot_turns_snapshots_off_and_the_run_goes_on(tmp_path: Path, monkeypatch) -> None:
    def broken(self: OutputProbe, model: nn.Module, x: torch.Tensor) -> list[Any]:
        raise RuntimeError("no hooks here")

    monkeypatch.setattr(OutputProbe, "take", broken)
    events: list[Event] = []
    train(conv_net(), RunConfig.model_validate({"epochs": 2, "layer_stats_every": 5,
                                                "data": {"dataset": "digits", "batch_size": 128}}),
          emit=events.append, run_dir=tmp_path / "run")
    assert events[-1].type == "run_finished" and [e.epoch for e in events if e.type == "epoch"] == [1, 2]
    warnings = [e.message for e in events if e.type == "warning"]
    assert warnings == ["layer snapshots are off for the rest of this run: RuntimeError: no hooks here"]
    assert not [e for e in events if e.type == "layer_snapshot"]


def test_an_empty_output_has_no_maps() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 1), nn.AdaptiveAvgPool2d((0, 3))).eval()
    probe = OutputProbe(model, str, {})
    views = probe.take(model, torch.randn(1, 1, 4, 4))
    assert [v.shape for v in views] == [[4, 4, 4], [4, 0, 3]]
    assert views[1].maps is None and views[1].output.counts == [0] * SNAPSHOT_BINS
