"""The HTTP API without training: catalog, schema, report, export, projects, datasets, the editor
page, security defaults and the demo project."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from layerlab.api import Settings, create_app
from layerlab.api.demo import DEMO_NAME, demo_graph
from layerlab.api.routes import graphs as graph_routes


def make_client(tmp_path: Path, **settings: object) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path, **settings)))


@pytest.fixture
def client(tmp_path: Path):
    with make_client(tmp_path) as c:
        yield c


def broken_graph() -> dict:
    g = demo_graph()
    g["nodes"][1]["params"]["kernel_size"] = 99  # larger than the padded 8×8 input
    g["nodes"][1]["params"]["padding"] = 0
    return g


# --- catalog, schema, report -------------------------------------------------------------------


def test_catalog_and_schema(client: TestClient) -> None:
    cat = client.get("/api/catalog").json()
    ops = {o["op"] for o in cat["ops"]}
    assert {"Input", "Output", "Conv2d", "Linear"} <= ops
    schema = client.get("/api/schema").json()
    assert schema["title"] == "LayerLabGraph"


def test_report_valid_graph_has_per_node_shapes(client: TestClient) -> None:
    r = client.post("/api/graphs/report?batch_size=8&optimizer=sgd", json=demo_graph())
    assert r.status_code == 200
    report = r.json()
    assert report["valid"] is True
    assert report["output_shape"] == [10]
    shapes = {n["id"]: n["output_shape"] for n in report["nodes"]}
    assert shapes["pool1"] == [8, 4, 4]
    assert report["totals"]["memory"]["batch_size"] == 8


def test_report_with_errors_is_200_and_names_the_node(client: TestClient) -> None:
    r = client.post("/api/graphs/report", json=broken_graph())
    assert r.status_code == 200
    report = r.json()
    assert report["valid"] is False
    assert any(e["node"] == "conv1" for e in report["errors"])


def test_report_unknown_op_suggests(client: TestClient) -> None:
    g = demo_graph()
    g["nodes"][3]["op"] = "Relu"
    errors = client.post("/api/graphs/report", json=g).json()["errors"]
    assert errors[0]["node"] == "relu1" and errors[0]["field"] == "op"
    assert "ReLU" in errors[0]["suggestion"]


def test_report_rejects_non_json_and_bad_query(client: TestClient) -> None:
    r = client.post("/api/graphs/report", content=b"{nope")
    assert r.status_code == 422
    assert r.json()["detail"][0]["message"] == "the request body is not valid JSON"
    r = client.post("/api/graphs/report?batch_size=0", json=demo_graph())
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "query.batch_size"
    # Not an object at all: still a report, with the error.
    r = client.post("/api/graphs/report", json=[1, 2, 3])
    assert r.status_code == 200 and r.json()["valid"] is False


# --- export --------------------------------------------------------------------------------------


def test_export_python_and_json(client: TestClient) -> None:
    r = client.post("/api/export?format=python", json=demo_graph())
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="digits_cnn.py"'
    assert "nn.Conv2d(1, 8" in r.text
    compile(r.text, "digits_cnn.py", "exec")
    r = client.post("/api/export?format=json", json=demo_graph())
    assert r.status_code == 200
    assert r.json()["nodes"][0]["id"] == "input"


def test_export_invalid_graph_is_422_with_errors(client: TestClient) -> None:
    r = client.post("/api/export?format=python", json=broken_graph())
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail and detail[0]["node"] == "conv1"
    assert set(detail[0]) >= {"node", "field", "message", "suggestion"}


def test_export_torchscript_runs(client: TestClient) -> None:
    import torch

    r = client.post("/api/export?format=torchscript", json=demo_graph())
    assert r.status_code == 200
    model = torch.jit.load(io.BytesIO(r.content))
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_export_onnx_without_packages_is_501(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_routes, "onnx_available", lambda: False)
    r = client.post("/api/export?format=onnx", json=demo_graph())
    assert r.status_code == 501
    assert r.json() == {"detail": "onnx export needs the onnx and onnxscript packages"}


def test_export_unknown_format(client: TestClient) -> None:
    assert client.post("/api/export?format=pickle", json=demo_graph()).status_code == 422


# --- projects ------------------------------------------------------------------------------------


def test_demo_project_on_first_start_only(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        projects = c.get("/api/projects").json()
        assert [p["name"] for p in projects] == [DEMO_NAME]
        demo = c.get(f"/api/projects/{projects[0]['id']}").json()
        assert c.post("/api/graphs/report", json=demo["graph"]).json()["valid"] is True
        assert c.delete(f"/api/projects/{projects[0]['id']}").status_code == 204
        c.post("/api/projects", json={"name": "mine"})
    with make_client(tmp_path) as c:
        assert [p["name"] for p in c.get("/api/projects").json()] == ["mine"]


def test_project_lifecycle_and_versions(tmp_path: Path) -> None:
    with make_client(tmp_path, demo=False) as c:
        assert c.get("/api/projects").json() == []
        r = c.post("/api/projects", json={"name": "cnn", "graph": demo_graph()})
        assert r.status_code == 201
        project = r.json()
        pid = project["id"]
        assert project["latest_version"] == 1 and project["graph"]["name"] == "digits_cnn"

        changed = copy.deepcopy(demo_graph())
        changed["nodes"][1]["params"]["out_channels"] = 16
        r = c.post(f"/api/projects/{pid}/versions", json={"graph": changed, "message": "wider"})
        assert r.status_code == 201 and r.json()["version"] == 2
        # A graph with errors saves too (work in progress).
        assert c.post(f"/api/projects/{pid}/versions", json={"graph": broken_graph()}).json()["version"] == 3

        versions = c.get(f"/api/projects/{pid}/versions").json()
        assert [v["version"] for v in versions] == [3, 2, 1]
        assert versions[1]["message"] == "wider"
        assert c.get(f"/api/projects/{pid}/versions/2").json()["graph"]["nodes"][1]["params"]["out_channels"] == 16

        r = c.post(f"/api/projects/{pid}/versions/2/restore")
        assert r.status_code == 201 and r.json()["version"] == 4
        assert c.get(f"/api/projects/{pid}").json()["graph"] == changed

        r = c.patch(f"/api/projects/{pid}", json={"name": "wide cnn"})
        assert r.json()["name"] == "wide cnn"
        assert [p["name"] for p in c.get("/api/projects").json()] == ["wide cnn"]

        assert c.delete(f"/api/projects/{pid}").status_code == 204
        assert c.get(f"/api/projects/{pid}").json() == {"detail": "project not found"}


def test_project_errors(client: TestClient) -> None:
    assert client.get("/api/projects/nope").status_code == 404
    assert client.get("/api/projects/nope/versions").json() == {"detail": "project not found"}
    pid = client.get("/api/projects").json()[0]["id"]
    assert client.get(f"/api/projects/{pid}/versions/9").json() == {"detail": "version not found"}
    assert client.post(f"/api/projects/{pid}/versions/9/restore").status_code == 404
    r = client.post("/api/projects", json={"name": "", "extra": 1})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["detail"]}
    assert fields == {"name", "extra"}
    assert client.patch(f"/api/projects/{pid}", json={"name": "x" * 201}).status_code == 422


# --- datasets ------------------------------------------------------------------------------------


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_builtin_datasets(client: TestClient) -> None:
    builtin = {d["name"]: d for d in client.get("/api/datasets").json()["builtin"]}
    assert {"digits", "iris", "wine", "breast_cancer", "two_moons", "spirals", "blobs", "signals"} <= set(builtin)
    assert builtin["digits"]["sample_shape"] == [1, 8, 8]
    assert builtin["digits"]["num_classes"] == 10
    assert builtin["iris"]["task"] == "classification" and builtin["iris"]["sample_shape"] == [4]
    assert builtin["two_moons"]["synthetic"] is True


def test_upload_npz_and_csv(client: TestClient, tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    r = client.post("/api/datasets", files={"file": ("../../evil name.npz", _npz(x=x, y=y))})
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["kind"] == "npz" and info["sample_shape"] == [3] and info["samples"] == 40
    assert info["task"] == "classification" and info["num_classes"] == 2
    assert info["filename"] == "evil name.npz"
    # Stored under a generated name inside the uploads folder, nowhere else.
    stored = list((tmp_path / "uploads").iterdir())
    assert [p.name for p in stored] == [f"{info['id']}.npz"]

    csv = "a,b,target\n" + "\n".join(f"{i},{i * 2},{i % 3}" for i in range(30))
    r = client.post("/api/datasets", files={"file": ("table.csv", csv.encode())})
    assert r.status_code == 201, r.text
    assert r.json()["sample_shape"] == [2] and r.json()["num_classes"] == 3

    uploads = client.get("/api/datasets").json()["uploads"]
    assert len(uploads) == 2
    assert client.get(f"/api/datasets/uploads/{info['id']}").json()["id"] == info["id"]
    assert client.delete(f"/api/datasets/uploads/{info['id']}").status_code == 204
    assert not (tmp_path / "uploads" / f"{info['id']}.npz").exists()
    assert client.get(f"/api/datasets/uploads/{info['id']}").json() == {"detail": "upload not found"}


def test_the_dataset_list_names_the_files_an_upload_takes(client: TestClient) -> None:
    """What the form's file picker offers (``accepts``) is what the upload takes, no more, no less."""
    accepts = client.get("/api/datasets").json()["accepts"]
    assert accepts == [".npz", ".csv", ".zip", ".txt"]
    for suffix in [*accepts, ".pkl", ".json", ".npy"]:
        r = client.post("/api/datasets", files={"file": (f"data{suffix}", b"not a real dataset")})
        refused_for_type = r.status_code == 422 and "unsupported file type" in r.text
        assert refused_for_type == (suffix not in accepts), (suffix, r.status_code, r.text[:200])


def test_upload_refuses_pickles_and_other_files(client: TestClient, tmp_path: Path) -> None:
    objects = np.array([{"a": 1}, {"b": 2}], dtype=object)
    r = client.post("/api/datasets", files={"file": ("p.npz", _npz(x=objects, y=np.array([0, 1])))})
    assert r.status_code == 422
    r = client.post("/api/datasets", files={"file": ("model.pkl", b"\x80\x04K\x01.")})
    assert r.status_code == 422
    assert r.json()["detail"][0]["message"] == "unsupported file type '.pkl'"
    assert not any((tmp_path / "uploads").iterdir())


def test_upload_size_limit(tmp_path: Path) -> None:
    with make_client(tmp_path, max_upload_bytes=4096) as c:
        r = c.post("/api/datasets", files={"file": ("big.csv", b"1,2\n" * 5000)})
        assert r.status_code == 413
        assert r.json() == {"detail": "request body too large"}


# --- the editor page -----------------------------------------------------------------------------


def test_root_without_a_build_says_how_to_build(tmp_path: Path) -> None:
    with make_client(tmp_path, static_dir=tmp_path / "no-static") as c:
        r = c.get("/")
        assert r.status_code == 200 and "make run" in r.text


def test_root_serves_the_built_editor_with_spa_fallback(tmp_path: Path) -> None:
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<html>editor</html>")
    (static / "assets" / "app-1234.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("secret")
    with make_client(tmp_path, static_dir=static) as c:
        assert c.get("/").text == "<html>editor</html>"
        r = c.get("/assets/app-1234.js")
        assert r.text == "console.log(1)" and "immutable" in r.headers["cache-control"]
        assert c.get("/projects/abc/runs").text == "<html>editor</html>"
        assert "secret" not in c.get("/../secret.txt").text
        assert "secret" not in c.get("/%2e%2e/secret.txt").text
        assert c.get("/api/nothing-here").status_code == 404


# --- security ------------------------------------------------------------------------------------


def test_token_required_when_set(tmp_path: Path) -> None:
    with make_client(tmp_path, token="s3cret") as c:
        r = c.get("/api/projects")
        assert r.status_code == 401 and r.json() == {"detail": "missing or wrong token"}
        assert c.get("/api/projects", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.get("/api/projects", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.post("/api/graphs/report", json=demo_graph()).status_code == 401
        # ?token= only where a browser cannot send a header: checkpoint download links.
        assert c.get("/api/projects?token=s3cret").status_code == 401
        assert c.get("/api/runs/nope/checkpoint?token=s3cret").json() == {"detail": "run not found"}
        assert c.get("/api/runs/nope/checkpoint?token=bad").status_code == 401


def test_foreign_origin_cannot_write(client: TestClient) -> None:
    r = client.post("/api/projects", json={"name": "x"}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json() == {"detail": "origin not allowed"}
    assert client.post("/api/projects", json={"name": "x"}, headers={"Origin": "http://testserver"}).status_code == 201
    ok = client.post("/api/projects", json={"name": "y"}, headers={"Origin": "http://localhost:5173"})
    assert ok.status_code == 201


def test_body_limit_and_host_check(tmp_path: Path) -> None:
    with make_client(tmp_path, max_body_bytes=2048) as c:
        r = c.post("/api/graphs/report", content=b"[" + b"1," * 2000 + b"1]")
        assert r.status_code == 413 and r.json() == {"detail": "request body too large"}
        assert c.get("/api/catalog", headers={"Host": "evil.example"}).status_code == 400


def test_openapi_documents_the_graph_and_error_shapes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "LayerLabGraph" in spec["components"]["schemas"]
    report = spec["paths"]["/api/graphs/report"]["post"]
    assert report["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LayerLabGraph"
    }
    assert report["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Invalid"
    }
    for path in ("/api/projects", "/api/runs", "/api/datasets", "/api/runs/{run_id}/finetune"):
        assert path in spec["paths"]


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LAYERLAB_TOKEN", "abc")
    monkeypatch.setenv("LAYERLAB_ALLOWED_ORIGINS", "http://a.example, http://b.example")
    monkeypatch.setenv("LAYERLAB_MAX_RUNS", "3")
    monkeypatch.setenv("LAYERLAB_DEMO", "0")
    s = Settings.from_env()
    assert (s.data_dir, s.token, s.max_concurrent_runs, s.demo) == (tmp_path, "abc", 3, False)
    assert s.allowed_origins == ["http://a.example", "http://b.example"]
    assert s.db_url == f"sqlite:///{(tmp_path / 'layerlab.db').resolve()}"
    monkeypatch.setenv("LAYERLAB_DATABASE_URL", "sqlite://")
    assert Settings.from_env(data_dir=tmp_path / "x").db_url == "sqlite://"


def test_in_memory_database_works(tmp_path: Path) -> None:
    with make_client(tmp_path, database_url="sqlite://") as c:
        pid = c.post("/api/projects", json={"name": "m"}).json()["id"]
        assert c.get(f"/api/projects/{pid}").json()["name"] == "m"
    assert not (tmp_path / "layerlab.db").exists()


def test_local_runs_leave_a_core_to_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from layerlab.api import runs

    monkeypatch.delenv("LAYERLAB_EXECUTOR", raising=False)
    monkeypatch.setattr(runs.os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    assert runs.worker_threads(1) == 7 and runs.worker_threads(3) == 2 and runs.worker_threads(16) == 1
    with make_client(tmp_path, train_threads=3) as c:
        assert c.app.state.layerlab.runs.executor.num_threads == 3
