"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread, and a busy 2-core machine makes torch's thread
    pool spin (100x slower); the caller's setting comes back afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- PostgreSQL ------------------------------------------------------------------------------------
# The persistence and API tests run against SQLite and against a real PostgreSQL server that the
# suite starts itself (Debian's `postgresql`, installed by `make test`). Without the server they are
# skipped, unless LAYERLAB_REQUIRE_POSTGRES=1 (as in `make test`), which makes its absence a failure.
DATABASE_MODULES = {"test_api_basic", "test_api_runs", "test_hardening", "test_migrations"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__ in DATABASE_MODULES and "database" not in metafunc.fixturenames:
        metafunc.fixturenames.append("database")
    if "database" in metafunc.fixturenames:
        metafunc.parametrize("database", ["sqlite", "postgresql"], indirect=True, scope="module")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    from postgres import PostgresServer, pg_bindir

    bindir = pg_bindir()
    if bindir is None:
        message = "PostgreSQL is not installed (apt-get install postgresql; `make test` does)"
        if os.environ.get("LAYERLAB_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """'sqlite' (the default: a file in the data dir) or 'postgresql': every app a test creates
    without an explicit database_url gets a PostgreSQL database of its own data directory.
    Module-scoped, so a module's shared server fixtures take it as an argument and exist once per
    database."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "postgresql":
            server = request.getfixturevalue("postgres_server")
            from layerlab.api.settings import Settings

            patch.setattr(Settings, "db_url",
                          property(lambda self: self.database_url or server.database_for(self.data_dir)))
        yield request.param
