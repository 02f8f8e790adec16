"""The dataset templates in examples/ train to a sensible result on their dataset, on the CPU, in
under a minute each (the goal a learner opening the template meets)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from layerlab.train import DataConfig, RunConfig, load_dataset, train

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# template -> (run config, metric on the last epoch, threshold); accuracy must reach it, an error
# must stay under it.
TEMPLATES: dict[str, tuple[dict[str, Any], str, float]] = {
    "mnist_cnn": ({"data": {"dataset": "mnist"}, "epochs": 2, "optimizer": {"lr": 3e-3}}, "val_accuracy", 0.95),
    "mnist_resnet": ({"data": {"dataset": "mnist"}, "epochs": 4, "optimizer": {"lr": 3e-3},
                      "schedule": {"name": "cosine"}}, "val_accuracy", 0.93),
    "tokens_transformer": ({"data": {"dataset": "tokens"}, "epochs": 4, "optimizer": {"lr": 3e-3}},
                           "val_accuracy", 0.95),
    # Standardized targets: predicting the mean scores 1.0.
    "seasonal_forecaster": ({"data": {"dataset": "seasonal", "n_samples": 2000}, "loss": {"name": "mse"},
                             "epochs": 8, "optimizer": {"lr": 3e-3}}, "val_loss", 0.3),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = EXAMPLES.parent


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_template_trains_to_a_sensible_result(name: str) -> None:
    config, metric, threshold = TEMPLATES[name]
    graph = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    events: list[Any] = []
    started = time.monotonic()
    outcome = train(graph, RunConfig.model_validate({**config, "layer_stats_every": 0}), emit=events.append)
    elapsed = time.monotonic() - started
    assert outcome.status == "finished", outcome
    last = [e for e in events if e.type == "epoch"][-1]
    value = getattr(last, metric)
    if metric.endswith("accuracy"):
        assert value >= threshold, f"{name}: {metric} {value:.3f} < {threshold}"
    else:
        assert value <= threshold, f"{name}: {metric} {value:.4f} > {threshold}"
    assert elapsed < 60, f"{name} took {elapsed:.0f} s"


def test_char_gru_learns_to_predict_the_next_character(tmp_path: Path) -> None:
    # Real English text, offline: this project's own documentation, 20,000 characters of it.
    text = ((ROOT / "README.md").read_text(encoding="utf-8") + (ROOT / "docs" / "training.md").read_text(encoding="utf-8"))
    path = tmp_path / "docs.txt"
    path.write_text(text[:20_000], encoding="utf-8")
    data = {"dataset": "upload", "upload": {"path": str(path), "context": 32}, "batch_size": 128}
    ds = load_dataset(DataConfig.model_validate(data), seed=0)
    graph = json.loads((EXAMPLES / "char_gru.json").read_text(encoding="utf-8"))
    for node in graph["nodes"]:  # the template's own instruction: size the vocabulary to the text's
        if node["id"] == "embed":
            node["params"]["num_embeddings"] = ds.num_classes
        if node["id"] == "fc":
            node["params"]["out_features"] = ds.num_classes
    events: list[Any] = []
    started = time.monotonic()
    config = RunConfig.model_validate({"data": data, "epochs": 3, "optimizer": {"lr": 3e-3}, "layer_stats_every": 0})
    outcome = train(graph, config, emit=events.append)
    assert outcome.status == "finished", [getattr(e, "reason", None) for e in events if e.type == "run_failed"]
    assert time.monotonic() - started < 60
    accuracy = [e for e in events if e.type == "epoch"][-1].val_accuracy
    baseline = np.bincount(ds.y[ds.split_at:]).max() / (len(ds.y) - ds.split_at)  # always the commonest character
    assert accuracy > 0.3 and accuracy > 1.8 * baseline, (accuracy, baseline)
