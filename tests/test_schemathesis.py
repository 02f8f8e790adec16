"""The OpenAPI document is the truth: schemathesis generates requests for every operation from
/openapi.json and sends them over real HTTP to a running server; every response must be
documented (status code, content type, headers, body schema) and none may be a 5xx.

Bounded for CI (a few minutes on 2 cores); LAYERLAB_SCHEMATHESIS_EXAMPLES raises the search.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from layerlab.api import Settings, create_app
from test_api_fuzz import NullExecutor

EXAMPLES = int(os.environ.get("LAYERLAB_SCHEMATHESIS_EXAMPLES", "10"))
CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, unsupported_method]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory):
    data: Path = tmp_path_factory.mktemp("schemathesis")
    app = create_app(Settings(data_dir=data, static_dir=data / "static", cpu_workers=1),
                     executor_factory=lambda *args: NullExecutor(*args))  # no trainings
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert thread.is_alive() and time.time() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


# the document the server serves at /openapi.json (it depends on no state: routes and models only)
schema = schemathesis.openapi.from_dict(create_app(Settings(data_dir=Path("/nonexistent"))).openapi())


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_every_response_matches_the_openapi_document(case: schemathesis.Case, server_url: str) -> None:
    case.call_and_validate(base_url=server_url, checks=CHECKS)
