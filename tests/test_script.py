"""The exported training script reproduces its LayerLab run.

Each case trains a graph with the real trainer, exports the script for the same graph and config,
runs it as a subprocess on the CPU and compares the per-epoch losses and the final weights.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from helpers import chain, node
from layerlab.graph import GraphInvalidError
from layerlab.script import ScriptUnsupportedError, script_sections, to_script
from layerlab.train import train
from layerlab.train.events import EpochEvent, RunLog

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "digits_cnn_train.py"
LINE = re.compile(r"^epoch (\d+) train_loss (\d+\.\d{6})(?: val_loss (\d+\.\d{6}))?(?: val_accuracy (\d\.\d{6}))?$")


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the script runs on one thread too: the same kernels, the same sums
    yield
    torch.set_num_threads(before)


def digits_cnn() -> dict[str, Any]:
    return json.loads((ROOT / "examples" / "digits_cnn.json").read_text())


def small_cnn(*, frozen: tuple[str, ...] = ()) -> dict[str, Any]:
    def n(node_id: str, op: str, **params: Any) -> dict[str, Any]:
        out = node(node_id, op, **params)
        if node_id in frozen:
            out["frozen"] = True
        return out

    return chain([1, 8, 8],
                 n("conv1", "Conv2d", out_channels=4, kernel_size=3, padding=1),
                 n("bn1", "BatchNorm2d"),
                 n("relu1", "ReLU"),
                 n("conv2", "Conv2d", out_channels=6, kernel_size=3, stride=2),
                 n("relu2", "ReLU"),
                 n("flat", "Flatten"),
                 n("drop", "Dropout", p=0.2),
                 n("fc", "Linear", out_features=10))


def signal_net() -> dict[str, Any]:
    return chain([1, 32],
                 node("conv", "Conv1d", out_channels=4, kernel_size=5, padding=2),
                 node("bn", "BatchNorm1d"),
                 node("relu", "ReLU"),
                 node("pool", "MaxPool1d", kernel_size=8),
                 node("flat", "Flatten"),
                 node("fc", "Linear", out_features=4))


def mlp(inputs: int, outputs: int) -> dict[str, Any]:
    return chain([inputs],
                 node("fc1", "Linear", out_features=16),
                 node("act", "Tanh"),
                 node("fc2", "Linear", out_features=outputs))


def run_both(graph: dict[str, Any], config: dict[str, Any], tmp_path: Path, *,
             via: str = "trainer") -> tuple[list[EpochEvent], Path, Path]:
    """Train with LayerLab (in this process, or ``via="cli"``: ``layerlab train`` in its own) and with
    the exported script; the run's epochs, its checkpoint, the script's folder."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    events: list[Any] = []
    if via == "cli":
        (tmp_path / "graph.json").write_text(json.dumps(graph))
        (tmp_path / "run.json").write_text(json.dumps(config))
        done = subprocess.run([sys.executable, "-m", "layerlab.cli", "train", "graph.json", "--config", "run.json",
                               "--device", "cpu", "--quiet", "--out", "run"], capture_output=True, text=True,
                              env=env, timeout=300, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        events = RunLog(tmp_path / "run").read()
        checkpoint = tmp_path / events[-1].checkpoint  # relative to where it ran
    else:
        outcome = train(graph, config, emit=events.append, run_dir=tmp_path / "run")
        checkpoint = outcome.checkpoint
    assert events[-1].type == "run_finished", [getattr(e, "reason", None) for e in events if e.type == "run_failed"]
    script = tmp_path / "train.py"
    script.write_text(to_script(graph, config))
    out = tmp_path / "script-out"
    done = subprocess.run([sys.executable, str(script), "--out", str(out), "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    printed = [ln for ln in done.stdout.splitlines() if ln.startswith("epoch ")]
    assert len(printed) == len(epochs)
    for line, e in zip(printed, epochs, strict=True):
        m = LINE.match(line)
        assert m, line
        assert int(m[1]) == e.epoch
        assert float(m[2]) == pytest.approx(e.train_loss, abs=5e-7)
        if e.val_loss is not None:
            assert float(m[3]) == pytest.approx(e.val_loss, abs=5e-7)
        assert (m[4] is None) == (e.val_accuracy is None)
    history = json.loads((out / "history.json").read_text())
    for h, e in zip(history, epochs, strict=True):
        assert h["train_loss"] == pytest.approx(e.train_loss, rel=1e-6)
        if e.val_loss is not None:
            assert h["val_loss"] == pytest.approx(e.val_loss, rel=1e-6)
            assert h.get("val_accuracy") == e.val_accuracy
    mine, theirs = load_file(out / "weights.safetensors"), load_file(Path(checkpoint) / "model.safetensors")
    assert mine.keys() == theirs.keys()
    for k in mine:
        torch.testing.assert_close(mine[k], theirs[k], rtol=1e-6, atol=1e-7, msg=k)
    return epochs, Path(checkpoint), out


def test_adamw_cosine_weight_decay(tmp_path: Path) -> None:
    config = {"epochs": 2, "seed": 3, "data": {"dataset": "digits", "batch_size": 128},
              "optimizer": {"name": "adamw", "lr": 0.003, "weight_decay": 0.05},
              "schedule": {"name": "cosine", "warmup_steps": 5, "min_lr": 0.0003}}
    epochs, _, _ = run_both(digits_cnn(), config, tmp_path)
    assert epochs[-1].val_accuracy > 0.5  # it learned: the comparison is not between two no-ops


def test_layerlab_train_on_the_command_line_is_reproduced_too(tmp_path: Path) -> None:
    config = {"epochs": 2, "seed": 5, "data": {"dataset": "digits", "batch_size": 128},
              "optimizer": {"name": "adamw", "lr": 0.003, "weight_decay": 0.05}, "schedule": {"name": "cosine"}}
    run_both(digits_cnn(), config, tmp_path, via="cli")


def test_sgd_momentum_frozen_conv_and_batchnorm(tmp_path: Path) -> None:
    graph = small_cnn(frozen=("conv1", "bn1"))
    config = {"epochs": 2, "data": {"dataset": "digits", "batch_size": 100},
              "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True}}
    src = to_script(graph, config)
    assert "model.conv1.requires_grad_(False)" in src and "frozen_bn = [model.bn1]" in src
    _, checkpoint, out = run_both(graph, config, tmp_path)
    start = load_file(checkpoint / "model.safetensors")
    # frozen both ways: the conv's weights and the BatchNorm's running statistics never moved
    fresh = _fresh_weights(graph)
    for k in ("conv1.weight", "bn1.running_mean", "bn1.running_var", "bn1.weight"):
        torch.testing.assert_close(start[k], fresh[k], rtol=0, atol=0)
    assert not torch.equal(start["fc.weight"], fresh["fc.weight"])


def _fresh_weights(graph: dict[str, Any]) -> dict[str, torch.Tensor]:
    from layerlab import build

    return {k: v.detach().clone() for k, v in build(graph, seed=0).state_dict().items()}


def test_l1_clipping_step_schedule(tmp_path: Path) -> None:
    config = {"epochs": 3, "seed": 7, "data": {"dataset": "two_moons", "n_samples": 300, "batch_size": 32},
              "optimizer": {"name": "adam", "lr": 0.02, "l1": 0.001, "grad_clip": 0.5},
              "schedule": {"name": "step", "step_size": 10, "gamma": 0.5}}
    src = to_script(mlp(2, 2), config)
    assert "clip_grad_norm_(trainable, 0.5)" in src and "0.5 ** (step // 10)" in src
    run_both(mlp(2, 2), config, tmp_path)


def test_conv1d_on_signals(tmp_path: Path) -> None:
    config = {"epochs": 2, "data": {"dataset": "signals", "n_samples": 240, "num_classes": 4, "signal_length": 32,
                                    "batch_size": 33},  # 192 training samples: the last batch of one is dropped
              "optimizer": {"name": "rmsprop", "lr": 0.003}, "schedule": {"name": "one_cycle"}}
    run_both(signal_net(), config, tmp_path)


def test_augmentation_with_fixed_normalization(tmp_path: Path) -> None:
    config = {"epochs": 2, "data": {"dataset": "digits", "batch_size": 128, "normalize": False, "augment": [
        {"op": "RandomCrop", "padding": 1}, {"op": "RandomHorizontalFlip"}, {"op": "Normalize", "mean": [0.3],
                                                                            "std": [0.35]}]},
              "optimizer": {"name": "adamw", "lr": 0.003}}
    src = to_script(small_cnn(), config)
    assert "K.RandomCrop(size=(8, 8), padding=1" in src and "xb = (xb - mean_t) / std_t" in src
    run_both(small_cnn(), config, tmp_path)


def test_channels_last_label_smoothing_and_weight_decay_everywhere(tmp_path: Path) -> None:
    config = {"epochs": 1, "channels_last": True, "data": {"dataset": "digits", "batch_size": 200},
              "loss": {"label_smoothing": 0.1},
              "optimizer": {"name": "sgd", "lr": 0.05, "weight_decay": 0.01, "weight_decay_all": True}}
    src = to_script(small_cnn(), config)
    assert "memory_format=torch.channels_last" in src and "label_smoothing=0.1" in src and "no_decay" not in src
    run_both(small_cnn(), config, tmp_path)


def test_npz_upload_through_a_dataloader(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5)).astype(np.float64)
    y = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")  # text labels, mapped to class indices
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=y)
    config = {"epochs": 2, "patience": 5, "data": {"dataset": "upload", "upload": {"path": str(path)},
                                                   "loader": "dataloader", "batch_size": 16},
              "loss": {"name": "bce_with_logits"}, "optimizer": {"name": "adamw", "lr": 0.01}}
    src = to_script(mlp(5, 1), config)
    assert "DataLoader(" in src and "allow_pickle=False" in src
    run_both(mlp(5, 1), config, tmp_path)


def test_csv_regression_upload_max_steps_no_validation(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = ["a,b,target"] + [f"{u:.4f},{v:.4f},{2 * u - v + 0.1:.4f}" for u, v in rng.normal(size=(50, 2))]
    path = tmp_path / "table.csv"
    path.write_text("\n".join(rows) + "\n")
    config = {"epochs": 5, "max_steps": 9, "data": {"dataset": "upload", "upload": {"path": str(path)},
                                                    "val_split": 0.0, "batch_size": 8},
              "loss": {"name": "smooth_l1", "beta": 0.5}, "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.0}}
    src = to_script(mlp(2, 1), config)
    assert "val_loss" not in src and "val_accuracy" not in src  # only the settings in use
    epochs, _, _ = run_both(mlp(2, 1), config, tmp_path)
    assert epochs[-1].partial and epochs[-1].step == 9


def test_only_the_settings_in_use_appear() -> None:
    plain = to_script(mlp(4, 3), {"epochs": 1, "data": {"dataset": "iris"}, "optimizer": {"name": "sgd"}})
    for absent in ("scheduler", "clip_grad_norm_", "L1", "frozen_bn", "no_decay", "MAX_STEPS", "DataLoader(",
                   "bad_epochs", "y_std"):
        assert absent not in plain, absent
    ast.parse(plain)
    tree = ast.parse(to_script(digits_cnn(), {"epochs": 1, "optimizer": {"weight_decay": 0.1}}))
    assert any(isinstance(n, ast.FunctionDef) and n.name == "build_model" for n in tree.body)


def test_refuses_what_it_cannot_show() -> None:
    with pytest.raises(ScriptUnsupportedError, match="precision 'bf16'"):
        to_script(mlp(4, 3), {"data": {"dataset": "iris"}, "precision": "bf16"})
    with pytest.raises(GraphInvalidError):
        to_script(chain([4], node("c", "Conv2d", out_channels=2, kernel_size=3)), {"data": {"dataset": "iris"}})


def test_node_lines_point_at_the_node() -> None:
    graph = small_cnn(frozen=("conv1",))
    s = script_sections(graph, {"epochs": 1})
    lines = s.text().split("\n")
    where = s.node_lines()
    assert any("nn.Conv2d(1, 4" in lines[i - 1] for i in where["conv1"])
    assert any("model.conv1.requires_grad_(False)" in lines[i - 1] for i in where["conv1"])
    assert all("fc" in lines[i - 1] for i in where["fc"])


def test_node_lines_point_at_raw_parameters() -> None:
    """A class token held as a raw parameter: its definition and the forward line that uses it."""
    graph = chain([1, 8, 8], node("patches", "Conv2d", out_channels=8, kernel_size=4, stride=4),
                  node("flat", "Flatten", start_dim=2), node("seq", "Permute", dims=[0, 2, 1]),
                  node("cls_token", "ClassToken", form="parameter"), node("first", "Select"),
                  node("head", "Linear", out_features=10))
    s = script_sections(graph, {"epochs": 1, "data": {"dataset": "digits"}})
    lines = s.text().split("\n")
    shown = [lines[i - 1].strip() for i in s.node_lines()["cls_token"]]
    assert "self.cls_token = nn.Parameter(torch.zeros(1, 1, 8))" in shown
    assert any(line.startswith("cls_token = torch.cat([self.cls_token.expand(") for line in shown)


def test_golden_training_script() -> None:
    config = {"epochs": 3, "data": {"dataset": "digits", "batch_size": 64},
              "optimizer": {"name": "adamw", "weight_decay": 0.01, "grad_clip": 1.0},
              "schedule": {"name": "cosine", "warmup_steps": 20}}
    text = to_script(digits_cnn(), config)
    if os.environ.get("LAYERLAB_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "regenerate with LAYERLAB_UPDATE_GOLDEN=1 and review the diff"


# --- the CLI, the API and the notebook -------------------------------------------------------------

QUICK = {"epochs": 1, "data": {"dataset": "digits", "batch_size": 256}, "optimizer": {"name": "sgd", "lr": 0.1}}


def test_cli_writes_the_script_and_refuses_a_bad_config(tmp_path: Path) -> None:
    from layerlab.cli import main

    graph = tmp_path / "g.json"
    graph.write_text(json.dumps(digits_cnn()))
    config = tmp_path / "run.json"
    config.write_text(json.dumps(QUICK))
    assert main(["export", str(graph), "--format", "script", "--config", str(config), "-o", str(tmp_path / "t.py")]) == 0
    assert (tmp_path / "t.py").read_text() == to_script(digits_cnn(), QUICK)
    config.write_text(json.dumps({"epochs": 1, "data": {"batch_size": 0}}))
    assert main(["export", str(graph), "--format", "script", "--config", str(config)]) == 1
    assert main(["export", str(graph), "--format", "python", "--config", str(config)]) == 2


def test_api_exports_script_and_notebook_and_a_finished_runs_script(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from layerlab.api import create_app
    from layerlab.api.settings import Settings

    with TestClient(create_app(Settings(data_dir=tmp_path / "server", max_concurrent_runs=1))) as client:
        r = client.post("/api/export?format=script", json={"graph": digits_cnn(), "config": QUICK})
        assert r.status_code == 200, r.text
        assert r.text == to_script(digits_cnn(), QUICK)
        assert r.headers["content-disposition"] == 'attachment; filename="digits_cnn_train.py"'
        r = client.post("/api/export?format=ipynb", json={"graph": digits_cnn(), "config": QUICK})
        assert r.status_code == 200 and json.loads(r.text)["nbformat"] == 4
        bad = client.post("/api/export?format=script", json={"graph": digits_cnn(), "config": {"epochs": 0}})
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "config.epochs"
        view = client.post("/api/graphs/script", json={"graph": small_cnn(frozen=("conv1",)), "config": QUICK}).json()
        lines = view["code"].split("\n")
        assert [lines[i - 1].strip() for i in view["frozen_lines"]] == ["model.conv1.requires_grad_(False)"]
        assert view["nodes"]["fc"]

        project = client.post("/api/projects", json={"name": "p", "graph": digits_cnn()}).json()["id"]
        run = client.post("/api/runs", json={"project_id": project, "config": {**QUICK, "max_steps": 2}}).json()["id"]
        with client.websocket_connect(f"/api/runs/{run}/events") as ws:
            while ws.receive_json()["type"] not in ("run_finished", "run_failed"):
                pass
        r = client.get(f"/api/runs/{run}/export?format=script")
        assert r.status_code == 200, r.text
        assert r.text == to_script(digits_cnn(), {**QUICK, "max_steps": 2})
        assert client.get("/api/runs/0123456789abcdef0123456789abcdef/export").status_code == 404


def test_notebook_validates_and_its_cells_run_in_order(tmp_path: Path) -> None:
    import nbformat

    from layerlab.export import export_graph

    config = {**QUICK, "data": {"dataset": "iris", "batch_size": 32}}
    text = export_graph(mlp(4, 3), "ipynb", config=config).content.decode()
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    headings = [c.source for c in nb.cells if c.cell_type == "markdown"][1:]
    assert headings == ["## Settings", "## The data", "## Batches", "## A peek at a batch", "## The model",
                        "## Loss, optimizer and schedule", "## Training", "## The loss curves"]
    code = "\n\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "argparse" not in code and "print(model)" in code
    # The cells in order, as one kernel would run them (matplotlib without a display).
    (tmp_path / "cells.py").write_text(code)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "cells.py"], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "inputs (32, 4) torch.float32  targets (32,) torch.int64" in done.stdout
    assert LINE.match(done.stdout.strip().splitlines()[-1])
    assert (tmp_path / "weights.safetensors").is_file()
    history = json.loads((tmp_path / "history.json").read_text())
    assert json.loads(text) == json.loads(export_graph(mlp(4, 3), "ipynb", config=config).content)  # stable
    events: list[Any] = []
    train(mlp(4, 3), config, emit=events.append, run_dir=tmp_path / "run")
    run_epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert [h["val_loss"] for h in history] == pytest.approx([e.val_loss for e in run_epochs], rel=1e-6)
