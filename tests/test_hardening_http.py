"""Requests that must never reach a 5xx or a foreign page's hands: odd paths and query strings,
DNS-rebinding requests, and a server bound off loopback without a token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from layerlab.api import InsecureBindError, Settings, create_app, serve_settings
from layerlab.api.demo import demo_graph

ODD_PATHS = [
    "/%00", "/a%00b", "/assets/%00.js", "/%00/../index.html", "/x%0a%0dSet-Cookie:%20a=b", "/%7f",
    "/" + "a" * 300, "/" + "a/" * 600, "/" + "a" * 5000, "/%ff%fe%fd", "/%c0%ae%c0%ae/etc/passwd",
    "/..%2f..%2fetc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/assets/..%5c..%5csecret.txt",
    "/api/projects/%00", "/api/projects/%00/versions", "/api/runs/%00/metrics", "/api/runs/%00",
    "/api/datasets/uploads/%00", "/api/projects/x/versions/%00", "/api/runs?project_id=%00",
    "/api/runs?project_id=" + "a" * 5000, "/api/graphs/report?batch_size=%00", "/api/%00", "/docs%00",
]


@pytest.fixture
def client(tmp_path: Path):
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<html>editor</html>")
    (tmp_path / "secret.txt").write_text("secret")
    with TestClient(create_app(Settings(data_dir=tmp_path, static_dir=static)), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("path", ODD_PATHS, ids=lambda p: p[:40])
def test_odd_paths_are_a_400_or_404_never_a_5xx(client: TestClient, path: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    for method in ("GET", "POST", "DELETE"):
        r = client.request(method, path)
        assert r.status_code < 500, (method, path, r.text)
        assert "secret" not in r.text and "root:" not in r.text
    assert not [rec for rec in caplog.records if rec.levelname == "ERROR"]  # no logged traceback


def test_a_nul_or_control_character_is_a_400_naming_where(client: TestClient) -> None:
    assert client.get("/%00").json() == {"detail": "bad request path"}
    assert client.get("/%00").status_code == 400
    assert client.get("/api/runs?project_id=%00").json() == {"detail": "bad query string"}
    assert client.get("/api/runs?project_id=a%0ab").status_code == 400
    # unicode is not odd: a client-side route, and a missing id
    assert client.get("/projects/caf%C3%A9").text == "<html>editor</html>"
    assert client.get("/api/projects/caf%C3%A9").json() == {"detail": "project not found"}


def test_a_file_name_the_file_system_refuses_is_not_found(client: TestClient) -> None:
    # too long for the file system: the editor's page (a client-side route), not a crash
    assert client.get("/" + "a" * 300).text == "<html>editor</html>"
    assert client.get("/" + "a" * 5000).status_code == 400


def test_websocket_with_a_nul_in_its_path_is_closed(client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/api/runs/%00/events"):
        pass
    assert info.value.code == 1008


# --- exposure -----------------------------------------------------------------------------------


def test_a_dns_rebinding_request_is_refused_with_the_host_check_off(tmp_path: Path) -> None:
    """evil.example resolves to the server; the page sends its own name as Host and Origin."""
    rebinding = {"Host": "evil.example:8000", "Origin": "http://evil.example:8000"}
    open_hosts = Settings(data_dir=tmp_path, allowed_hosts=["*"], demo=False)
    with TestClient(create_app(open_hosts)) as c:
        r = c.post("/api/projects", json={"name": "pwned"}, headers=rebinding)
        assert r.status_code == 403 and r.json() == {"detail": "origin not allowed"}
        assert c.post("/api/graphs/report", json=demo_graph(), headers=rebinding).status_code == 403
        assert c.get("/api/projects").json() == []
    listed = open_hosts.model_copy(update={"allowed_origins": ["http://evil.example:8000"]})
    with TestClient(create_app(listed)) as c:  # an origin the operator listed is trusted
        assert c.post("/api/projects", json={"name": "mine"}, headers=rebinding).status_code == 201


def test_the_own_origin_is_trusted_when_the_host_is_a_configured_one(tmp_path: Path) -> None:
    own = {"Host": "127.0.0.1:8000", "Origin": "http://127.0.0.1:8000"}
    with TestClient(create_app(Settings(data_dir=tmp_path, allowed_origins=[], demo=False))) as c:
        assert c.post("/api/projects", json={"name": "a"}, headers=own).status_code == 201
        foreign = {"Host": "127.0.0.1:8000", "Origin": "http://127.0.0.1:9999"}
        assert c.post("/api/projects", json={"name": "b"}, headers=foreign).status_code == 403
    lan = serve_settings("192.168.7.7", tmp_path, insecure=True)
    assert "192.168.7.7" in lan.allowed_hosts
    with TestClient(create_app(lan.model_copy(update={"allowed_origins": [], "demo": False}))) as c:
        headers = {"Host": "192.168.7.7:8000", "Origin": "http://192.168.7.7:8000"}
        assert c.post("/api/projects", json={"name": "c"}, headers=headers).status_code == 201


def test_serving_off_loopback_needs_a_token_or_insecure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LAYERLAB_TOKEN", raising=False)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert serve_settings(host, tmp_path).allowed_hosts == Settings().allowed_hosts
    for host in ("0.0.0.0", "::", "192.168.7.7", "example.org"):
        with pytest.raises(InsecureBindError, match=f"refusing to serve on {host} without LAYERLAB_TOKEN"):
            serve_settings(host, tmp_path)
    assert serve_settings("0.0.0.0", tmp_path, insecure=True).allowed_hosts == ["*"]
    monkeypatch.setenv("LAYERLAB_TOKEN", "s3cret")
    settings = serve_settings("0.0.0.0", tmp_path)
    assert settings.token == "s3cret" and settings.allowed_hosts == ["*"]


def test_layerlab_serve_refuses_to_start_on_0000_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LAYERLAB_TOKEN"} | {"LAYERLAB_DATA_DIR": str(tmp_path)}
    cli = [sys.executable, "-m", "layerlab.cli", "serve", "--host", "0.0.0.0", "--port", "0"]
    done = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0 without LAYERLAB_TOKEN" in done.stderr
    assert "--insecure" in done.stderr
    assert not (tmp_path / "layerlab.db").exists()  # nothing was started


def test_compose_requires_a_token_for_the_api_it_serves_on_0000() -> None:
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[1] / "docker-compose.yml").read_text())
    env = compose["services"]["api"]["environment"]
    assert env["LAYERLAB_TOKEN"].startswith("${LAYERLAB_TOKEN:?"), "no default: compose refuses to start"
    assert env["LAYERLAB_ALLOWED_ORIGINS"].startswith("${LAYERLAB_ALLOWED_ORIGINS:-http://localhost:8000")
    assert "--insecure" not in compose["services"]["api"]["command"][2]


def test_a_wrong_method_on_an_api_path_is_a_405_naming_the_allowed_ones(client: TestClient) -> None:
    r = client.get("/api/graphs/report")  # the editor's catch-all answers every GET; not this one
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert client.get("/api/runs/" + "a" * 32 + "/pause").status_code == 405
    assert client.get("/api/no-such-thing").status_code == 404
