"""No request, however malformed, gets a 5xx: random inputs for every operation in /openapi.json."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerlab.api import Settings, create_app
from layerlab.api.demo import demo_graph


class NullExecutor:
    """Accepts every run and never runs it: the fuzzer must not start trainings."""

    def __init__(self, runs_dir: Path, max_concurrent: int) -> None: ...
    def subscribe(self, callback: Any, **_: Any) -> Any:
        return lambda: None
    def submit(self, *args: Any, **kwargs: Any) -> None: ...
    def stop(self, run_id: str) -> None: ...
    def pause(self, run_id: str) -> None: ...
    def resume(self, run_id: str) -> None: ...
    def kill(self, run_id: str) -> None: ...
    def shutdown(self, **_: Any) -> None: ...


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("fuzz")
    app = create_app(Settings(data_dir=data, static_dir=data / "static"), executor_factory=lambda *_: NullExecutor(*_))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def known_ids(client: TestClient) -> dict[str, str]:
    project = client.get("/api/projects").json()[0]["id"]
    run = client.post("/api/runs", json={"project_id": project, "config": {"epochs": 1}}).json()["id"]
    return {"project_id": project, "run_id": run, "version": "1", "upload_id": "0" * 32}


def operations() -> list[tuple[str, str]]:
    app = create_app(Settings(data_dir=Path("/nonexistent-fuzz")))
    spec = app.openapi()
    return [(path, method) for path, item in spec["paths"].items() for method in item]


# Bounded for CI; raise it locally to search harder (LAYERLAB_FUZZ_EXAMPLES=500).
EXAMPLES = int(os.environ.get("LAYERLAB_FUZZ_EXAMPLES", "10"))

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False), st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
path_text = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%\\"), min_size=1, max_size=40)


@st.composite
def mutated_graph(draw: st.DrawFn) -> Any:
    """The demo graph with a few fields replaced by random JSON: reaches deep validation paths."""
    g = copy.deepcopy(demo_graph())
    for _ in range(draw(st.integers(1, 3))):
        node = draw(st.sampled_from(g["nodes"]))
        key = draw(st.sampled_from(["op", "id", "params", "parent", "kernel_size", "out_features", "shape", "x"]))
        value = draw(json_values)
        if key in ("op", "id", "params", "parent"):
            node[key] = value
        else:
            if not isinstance(node.get("params"), dict):
                node["params"] = {}
            node["params"][key] = value
    if draw(st.booleans()):
        g["edges"] = draw(st.lists(st.fixed_dictionaries({"source": st.text(max_size=8), "target": st.text(max_size=8)}),
                                   max_size=3))
    return g


bodies = st.one_of(json_values, mutated_graph(), st.builds(lambda: {"project_id": "x", "config": {}}))


@pytest.mark.parametrize(("path", "method"), operations())
def test_no_server_errors(client: TestClient, known_ids: dict[str, str], path: str, method: str) -> None:
    spec = client.app.openapi()
    params = spec["paths"][path][method].get("parameters", [])

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        url = path
        query: dict[str, Any] = {}
        for p in params:
            if p["in"] == "path":
                value = data.draw(st.one_of(path_text, st.just(known_ids.get(p["name"], "x")),
                                            st.integers(-(2**70), 2**70).map(str)))
                url = url.replace("{" + p["name"] + "}", value)
            elif p["in"] == "query" and data.draw(st.booleans()):
                query[p["name"]] = data.draw(st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=20),
                                                       st.sampled_from(["python", "json", "sgd", "-1"])))
        kwargs: dict[str, Any] = {"params": query}
        if method in ("post", "patch", "put"):
            if path == "/api/datasets":
                name = data.draw(st.sampled_from(["a.npz", "a.csv", "a.txt", "../../x.npz", ""]))
                kwargs["files"] = {"file": (name, data.draw(st.binary(max_size=200)))}
            elif data.draw(st.integers(0, 9)) == 0:
                kwargs["content"] = data.draw(st.binary(max_size=100))
            else:
                kwargs["content"] = json.dumps(data.draw(bodies)).encode()
                kwargs["headers"] = {"content-type": "application/json"}
        response = client.request(method.upper(), url, **kwargs)
        assert response.status_code < 500, (method, url, kwargs, response.text)

    check()


def test_deeply_nested_json_is_not_a_server_error(client: TestClient) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    for path in ("/api/graphs/report", "/api/export", "/api/projects"):
        assert client.post(path, content=deep, headers={"content-type": "application/json"}).status_code < 500


@pytest.mark.parametrize("path", ["/api/projects", "/api/graphs/report", "/api/export?format=json", "/api/runs"])
def test_non_finite_numbers_are_not_server_errors(client: TestClient, path: str) -> None:
    g = json.dumps(demo_graph()).replace('"out_features": 10', '"out_features": NaN')
    for body in (g, '{"name": "x", "graph": {"a": NaN, "b": Infinity}}', '{"project_id": "x", "config": {"seed": -Infinity}}'):
        r = client.post(path, content=body.encode(), headers={"content-type": "application/json"})
        assert r.status_code < 500, (path, body, r.text)
