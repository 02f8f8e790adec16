"""The schema is versioned with Alembic, on SQLite and on PostgreSQL (each test runs on both):
a new database is created at the newest revision and matches the models, and a data directory
made before migrations existed is recorded at the baseline and upgraded when the server starts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient

from layerlab.api import Settings, create_app
from layerlab.api.db import BASELINE, MIGRATIONS, Base, Database
from layerlab.api.demo import demo_graph


def alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def test_a_new_database_is_at_the_newest_revision_and_matches_the_models(tmp_path: Path, database: str) -> None:
    db = Database(Settings(data_dir=tmp_path).db_url)
    try:
        assert db.engine.dialect.name == database
        assert db.revision() is None
        db.migrate()
        assert db.revision() == head()
        with db.engine.connect() as connection:
            # a model changed without a migration (or the other way round) shows up here
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        db.migrate()  # running it again changes nothing
        assert db.revision() == head()
    finally:
        db.dispose()


def test_every_migration_goes_down_and_up_again(tmp_path: Path, database: str) -> None:
    db = Database(Settings(data_dir=tmp_path).db_url)
    try:
        db.migrate()
        with db.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.migrate()
        assert db.revision() == head()
    finally:
        db.dispose()


def legacy_data_dir(tmp_path: Path) -> Database:
    """A data directory as the server left it before migrations: the baseline tables (what
    ``create_all`` made), no ``alembic_version``, and a project with a version, a run with
    its events and an upload in it."""
    db = Database(Settings(data_dir=tmp_path).db_url)
    with db.engine.begin() as connection:
        command.upgrade(alembic_config(connection), BASELINE)
        connection.execute(sa.text("DROP TABLE alembic_version"))
    tables = sa.MetaData()
    tables.reflect(db.engine)
    now = datetime(2026, 11, 30, 12, 0, 0)
    with db.engine.begin() as connection:
        connection.execute(tables.tables["projects"].insert(), [
            {"id": "p" * 32, "name": "old project", "created_at": now, "updated_at": now, "latest_version": 1}])
        connection.execute(tables.tables["graph_versions"].insert(), [
            {"project_id": "p" * 32, "version": 1, "graph": demo_graph(), "message": "first", "created_at": now}])
        connection.execute(tables.tables["runs"].insert(), [
            {"id": "r" * 32, "project_id": "p" * 32, "version": 1, "name": "old run", "graph": demo_graph(),
             "config": {"epochs": 1}, "status": "finished", "created_at": now, "last_seq": 1, "step": 3,
             "epoch": 1, "train_loss": 0.5}])
        connection.execute(tables.tables["run_events"].insert(), [
            {"run_id": "r" * 32, "seq": i, "type": kind, "data": {"type": kind, "seq": i, "run_id": "r" * 32}}
            for i, kind in enumerate(("run_started", "run_finished"))])
        connection.execute(tables.tables["uploads"].insert(), [
            {"id": "u" * 32, "filename": "old.npz", "kind": "npz", "size": 1234, "created_at": now,
             "info": {"task": "classification", "sample_shape": [3], "input_dtype": "float32", "num_classes": 2,
                      "class_names": ["0", "1"], "samples": 40}}])
    return db


def test_the_server_upgrades_a_data_dir_from_before_migrations(tmp_path: Path, database: str) -> None:
    old = legacy_data_dir(tmp_path)
    assert old.revision() is None
    if database == "postgresql":  # the bug the second migration fixes: a 3 GiB upload overflowed `integer`
        with pytest.raises(sa.exc.DataError), old.engine.begin() as connection:
            connection.execute(sa.text("UPDATE uploads SET size = 3221225472"))
    old.dispose()

    with TestClient(create_app(Settings(data_dir=tmp_path, demo=False))) as client:  # what `layerlab serve` runs
        [project] = client.get("/api/projects").json()
        assert project["name"] == "old project"
        version = client.get(f"/api/projects/{'p' * 32}/versions/1").json()
        assert version["graph"] == demo_graph() and version["message"] == "first"
        run = client.get(f"/api/runs/{'r' * 32}").json()
        assert run["status"] == "finished" and run["train_loss"] == 0.5
        assert [e["type"] for e in client.get(f"/api/runs/{'r' * 32}/events/history").json()["events"]] == [
            "run_started", "run_finished"]
        [upload] = client.get("/api/datasets").json()["uploads"]
        assert upload["filename"] == "old.npz" and upload["samples"] == 40
        # and it keeps working: a new version on the old project
        saved = client.post(f"/api/projects/{'p' * 32}/versions", json={"graph": demo_graph()})
        assert saved.status_code == 201 and saved.json()["version"] == 2

    db = Database(Settings(data_dir=tmp_path).db_url)
    try:
        assert db.revision() == head()
        with db.engine.begin() as connection:
            connection.execute(sa.text("UPDATE uploads SET size = 3221225472"))  # 64-bit now, everywhere
            assert connection.execute(sa.text("SELECT size FROM uploads")).scalar() == 3 * 2**30
    finally:
        db.dispose()
