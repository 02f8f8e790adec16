"""docker-compose.yml, Dockerfile and .dockerignore, checked offline (no docker engine needed).

The compose file is validated against the compose specification's JSON schema vendored by
check-jsonschema, then its meaning is asserted: which services exist, what each runs, that
workers reserve NVIDIA GPUs and share the data volume with the API.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _check_jsonschema() -> list[str]:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    assert exe is not None, "check-jsonschema is not installed (it is in the dev extra)"
    return [exe]


def test_compose_matches_the_compose_spec() -> None:
    result = subprocess.run(
        [*_check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    """The check above can fail: a misspelt service key is refused."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  api:\n    image: layerlab\n    comand: [serve]\n")
    result = subprocess.run(
        [*_check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "comand" in result.stdout + result.stderr


def test_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"api", "ray-head", "worker", "postgres"} <= set(services)
    # postgres is opt-in; the three others start with a plain `docker compose up`.
    assert services["postgres"]["profiles"] == ["postgres"]
    for name in ("api", "ray-head", "worker"):
        assert "profiles" not in services[name]
        assert "build" in services[name], f"{name} builds the project's image"
        assert services[name]["image"] == services["api"]["image"], "one image for every node"


def test_api_drives_the_ray_cluster(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    env = api["environment"]
    assert env["LAYERLAB_EXECUTOR"] == "ray"
    assert env["LAYERLAB_RAY_ADDRESS"] == "ray-head:6379"
    assert env["LAYERLAB_DATA_DIR"] == "/data"
    assert "LAYERLAB_DATABASE_URL" in env
    # A Ray driver runs on a cluster node: the api joins as one without CPUs or GPUs, then serves.
    assert api["command"][:2] == ["sh", "-c"]
    script = api["command"][2]
    join, serve = script.split("&&")
    assert join.split()[:2] == ["ray", "start"]
    assert '--address="$${LAYERLAB_RAY_ADDRESS}"' in join, "$$ keeps compose from interpolating it"
    assert "--num-cpus=0" in join and "--num-gpus=0" in join and "--head" not in join
    assert serve.split()[:3] == ["exec", "layerlab", "serve"]
    assert "0.0.0.0" in serve
    assert any(str(p).endswith(":8000") for p in api["ports"])
    assert api["depends_on"]["ray-head"]["condition"] == "service_healthy"


def test_ray_head(compose: dict[str, Any]) -> None:
    head = compose["services"]["ray-head"]
    command = head["command"]
    assert command[:3] == ["ray", "start", "--head"]
    assert "--port=6379" in command
    assert "--block" in command, "without --block the container exits at once"
    assert "--num-gpus=0" in command and "--num-cpus=0" in command, "runs are placed on workers"
    assert "ray" in " ".join(head["healthcheck"]["test"])


def test_worker_reserves_gpus_and_joins(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    command = worker["command"]
    assert command[:2] == ["ray", "start"]
    assert "--address=ray-head:6379" in command
    assert "--block" in command
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert len(devices) == 1
    assert devices[0]["driver"] == "nvidia"
    assert devices[0]["capabilities"] == ["gpu"]
    assert "count" in devices[0]
    # `--scale worker=N` needs a worker without a fixed name or host port.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["depends_on"]["ray-head"]["condition"] == "service_healthy"


def test_every_ray_process_shares_the_auth_token(compose: dict[str, Any]) -> None:
    """Ray 2.5x+ enables token authentication; a node without the token cannot join."""
    for name in ("api", "ray-head", "worker"):
        env = compose["services"][name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token"
        assert env["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?"), "no default token: compose refuses to start"


def test_shared_volume_at_the_same_path(compose: dict[str, Any]) -> None:
    """Checkpoints and uploads are exchanged by path, so api and worker mount them alike."""
    services = compose["services"]
    api_mounts = set(services["api"]["volumes"])
    worker_mounts = set(services["worker"]["volumes"])
    shared = api_mounts & worker_mounts
    assert shared, "api and worker share no volume"
    for mount in shared:
        name, path = mount.split(":")[:2]
        assert name in compose["volumes"], f"{name} is a named volume"
        assert path == services["api"]["environment"]["LAYERLAB_DATA_DIR"]
        assert path == services["worker"]["environment"]["LAYERLAB_DATA_DIR"]
    postgres = services["postgres"]
    assert any(v.split(":")[0] in compose["volumes"] for v in postgres["volumes"])
    assert postgres["image"].startswith("postgres:")


def test_dockerfile_is_multi_stage() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, flags=re.MULTILINE | re.IGNORECASE)
    assert len(stages) == 2, stages
    (node_image, node_stage), (python_image, _) = stages
    assert node_image.startswith("node:") and node_stage
    assert python_image.startswith("python:")
    assert "npm ci" in text and "npm run build" in text
    assert re.search(rf"COPY --from={node_stage} \S*backend/layerlab/static", text), "the editor bundle is copied"
    assert "[cluster" in text, "the image installs ray"
    assert "TORCH_SPEC" in text
    assert re.search(r"^USER\s+(?!root)\S+", text, flags=re.MULTILINE), "the server does not run as root"


def test_frontend_build_lands_where_the_dockerfile_copies_it() -> None:
    vite = (ROOT / "frontend" / "vite.config.ts").read_text()
    assert "../backend/layerlab/static" in vite


def test_dockerignore_keeps_the_context_small_but_complete() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for heavy in (".git", ".venv", "frontend/node_modules"):
        assert heavy in ignored
    for needed in ("backend", "frontend", "pyproject.toml", "frontend/package-lock.json"):
        assert needed not in ignored
