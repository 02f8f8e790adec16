"""The dataset templates in examples/ train to a sensible result on their dataset, on the CPU, in
under a minute each (the goal a learner opening the template meets)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from layerlab.train import RunConfig, train

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# template -> (run config, metric on the last epoch, threshold); accuracy must reach it, an error
# must stay under it.
TEMPLATES: dict[str, tuple[dict[str, Any], str, float]] = {
    "mnist_cnn": ({"data": {"dataset": "mnist"}, "epochs": 2, "optimizer": {"lr": 3e-3}}, "val_accuracy", 0.95),
    "mnist_resnet": ({"data": {"dataset": "mnist"}, "epochs": 4, "optimizer": {"lr": 3e-3},
                      "schedule": {"name": "cosine"}}, "val_accuracy", 0.93),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
