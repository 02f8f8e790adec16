"""`layerlab train` as a user runs it: a real process, its exit status, its run directory."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file

from layerlab.api.demo import demo_graph
from layerlab.train.events import RunLog

CLI = [sys.executable, "-m", "layerlab.cli", "train"]


def _graph(tmp_path: Path, frozen: str | None = None) -> Path:
    graph = demo_graph()
    for node in graph["nodes"]:
        if node["id"] == frozen:
            node["frozen"] = True
    path = tmp_path / "digits_cnn.json"
    path.write_text(json.dumps(graph))
    return path


def test_trains_the_digits_cnn_and_leaves_a_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "fresh" / "run"
    done = subprocess.run([*CLI, str(_graph(tmp_path, frozen="bn1")), "--epochs", "4", "--lr", "3e-3",
                           "--batch-size", "64", "--seed", "0", "--device", "cpu", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [line.split("  ")[0] for line in done.stdout.splitlines() if line.startswith("epoch")] == [
        "epoch 1", "epoch 2", "epoch 3", "epoch 4"]  # one line of metrics per epoch
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 4 and config["optimizer"]["lr"] == 3e-3 and config["data"]["dataset"] == "digits"
    events = RunLog(out).read()
    assert [e.seq for e in events] == list(range(len(events)))
    finished = events[-1]
    assert finished.type == "run_finished" and finished.val_accuracy >= 0.9, finished
    started = next(e for e in events if e.type == "run_started")
    assert started.model.frozen == ["bn1.weight", "bn1.bias"], "frozen nodes stay frozen"
    weights = load_file(str(Path(finished.checkpoint) / "model.safetensors"))
    assert weights["fc.weight"].shape == (10, 128)


def test_bad_arguments_exit_2_and_a_failed_run_exits_1(tmp_path: Path) -> None:
    graph = str(_graph(tmp_path))
    bad = subprocess.run([*CLI, graph, "--epochs", "0", "--out", str(tmp_path / "a")], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "epochs" in bad.stderr and "received 0" in bad.stderr, bad.stderr
    failed = subprocess.run([*CLI, graph, "--dataset", "iris", "--epochs", "1", "--out", str(tmp_path / "b")],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1, failed.stderr
    assert "the run failed" in failed.stderr and "iris" in failed.stderr and "(1, 8, 8)" in failed.stderr


def test_ctrl_c_stops_with_a_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([*CLI, str(_graph(tmp_path)), "--epochs", "1000", "--quiet", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(e.type == "step" for e in RunLog(out).read()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    last = RunLog(out).read()[-1]
    assert last.type == "run_stopped" and Path(last.checkpoint, "model.safetensors").is_file()
