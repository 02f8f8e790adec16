"""Fine-tuning from uploaded weights: .safetensors or .pt (weights only), checked against the graph."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load, save

from layerlab import build
from layerlab.api import Settings, create_app
from layerlab.api.demo import demo_graph


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    with TestClient(create_app(Settings(data_dir=tmp_path_factory.mktemp("server")))) as c:
        yield c


def _upload(client: TestClient, name: str, body: bytes) -> Any:
    return client.post("/api/runs/weights", files={"file": (name, body)})


def _pt(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _wide_demo() -> dict[str, Any]:
    graph = demo_graph()
    for node in graph["nodes"]:
        if node["id"] == "conv1":
            node["params"]["out_channels"] = 16
    return graph


def test_a_pt_state_dict_starts_a_run_with_its_weights(client: TestClient) -> None:
    trained = build(demo_graph(), seed=123)  # other weights than the run's own initialization (seed 0)
    r = _upload(client, "mine.pt", _pt({"state_dict": trained.state_dict()}))
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["tensors"] == 9 and info["filename"] == "mine.pt"

    project = client.get("/api/projects").json()[0]["id"]
    config = {"max_steps": 1, "epochs": None, "optimizer": {"name": "sgd", "lr": 1e-9}, "data": {"val_split": 0.0}}
    r = client.post("/api/runs", json={"project_id": project, "config": config, "init_weights": info["id"]})
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    deadline = time.monotonic() + 120
    while (run := client.get(f"/api/runs/{run_id}").json())["status"] not in ("finished", "failed"):
        assert time.monotonic() < deadline, run
        time.sleep(0.2)
    assert run["status"] == "finished", run
    weights = load(client.get(f"/api/runs/{run_id}/checkpoint").content)
    # One step at lr 1e-9 leaves the uploaded weights where they were.
    assert torch.allclose(weights["conv1.weight"], trained.state_dict()["conv1.weight"], atol=1e-6)
    # Its training script would start from fresh weights, so the export says so instead.
    r = client.get(f"/api/runs/{run_id}/export", params={"format": "script"})
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == ("this run starts from uploaded weights; the script starts from fresh "
                                  "weights, so it would not reproduce the run")


def test_mismatched_weights_list_missing_unexpected_and_wrong_shapes(client: TestClient) -> None:
    other = build(_wide_demo(), seed=0).state_dict()
    other["extra.weight"] = torch.zeros(3)
    del other["fc.bias"]
    r = _upload(client, "other.safetensors", save({k: v.contiguous() for k, v in other.items()}))
    assert r.status_code == 201, r.text
    project = client.get("/api/projects").json()[0]["id"]
    r = client.post("/api/runs", json={"project_id": project, "config": {"epochs": 1}, "init_weights": r.json()["id"]})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["field"] == "init_weights"
    message = error["message"]
    assert message.startswith("the weights do not match this graph: missing: fc.bias; unexpected: extra.weight; "
                              "wrong shape: bn1.bias (16) instead of (8)"), message
    assert "conv1.weight (16, 1, 3, 3) instead of (8, 1, 3, 3)" in message


def test_a_pt_that_is_not_just_tensors_is_refused(client: TestClient, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> Any:
            return (os.system, (f"touch {marker}",))

    r = _upload(client, "evil.pt", _pt({"w": Payload()}))
    assert r.status_code == 422 and "could not be read as weights only" in r.json()["detail"][0]["message"], r.text
    assert not marker.exists(), "nothing was unpickled"
    r = _upload(client, "list.pt", _pt([torch.zeros(2)]))
    assert r.status_code == 422 and "holds a list, not a state_dict" in r.json()["detail"][0]["message"], r.text
    r = _upload(client, "notes.txt", b"hello")
    assert r.status_code == 422 and "unsupported weights file" in r.json()["detail"][0]["message"]
