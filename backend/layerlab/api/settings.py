"""Server settings: one object, built from arguments or ``LAYERLAB_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from layerlab.export import DEFAULT_MAX_BUILD_BYTES
from layerlab.train.archive import UploadLimits

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
DEFAULT_ALLOWED_ORIGINS = ("http://localhost:5173", "http://127.0.0.1:5173")
DEFAULT_ALLOWED_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1", "testserver")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class Settings(BaseModel):
    """Everything the server can be told. See docs/api.md for the environment variables."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(Path("data"), description="Database, uploads and run folders live here.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default a SQLite file in data_dir.")
    token: str | None = Field(None, description="When set, every /api request must carry it.")
    allowed_origins: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_ORIGINS))
    allowed_hosts: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_HOSTS))
    max_body_bytes: Annotated[int, Field(ge=1024)] = 4 * 1024 * 1024
    max_upload_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024 * 1024
    upload_limits: UploadLimits = Field(
        default_factory=UploadLimits.from_env,
        description="What reading an upload may cost once decompressed (LAYERLAB_MAX_DATASET_BYTES, "
        "LAYERLAB_MAX_ARCHIVE_FILES, LAYERLAB_MAX_CLASSES).",
    )
    max_build_bytes: Annotated[int, Field(ge=1024)] = Field(
        DEFAULT_MAX_BUILD_BYTES, description="What a TorchScript or ONNX export may build: the weights plus one "
        "sample's activations, estimated before anything is built; past that a 422 (LAYERLAB_MAX_BUILD_BYTES).")
    max_concurrent_runs: Annotated[int, Field(ge=1, le=64)] = 1
    train_threads: Annotated[int, Field(ge=1, le=1024)] | None = Field(
        None, description="torch threads per local run; default (cores − 1) / max_concurrent_runs."
    )
    cpu_workers: Annotated[int, Field(ge=1, le=64)] = Field(
        default_factory=lambda: max(1, min(4, (os.cpu_count() or 2) - 1)),
        description="Worker processes for the editor's reports (LAYERLAB_CPU_WORKERS); default cores − 1, "
        "at most 4.",
    )
    torch_workers: Annotated[int, Field(ge=1, le=64)] = Field(
        1, description="Worker processes for the jobs that load torch: run checks, training-script text and "
        "exports (LAYERLAB_TORCH_WORKERS). Apart from the report workers, so a report never waits behind "
        "a first import of torch.")
    cpu_max_pending: Annotated[int, Field(ge=0)] = Field(
        64, description="Jobs that may wait for a worker; past that a 503 (LAYERLAB_CPU_MAX_PENDING).")
    static_dir: Path = STATIC_DIR
    demo: bool = Field(True, description="Create a demo project when the database is empty.")
    ws_queue_size: Annotated[int, Field(ge=8)] = 2000
    event_flush_interval_s: Annotated[float, Field(gt=0, le=10)] = 0.25
    event_flush_batch: Annotated[int, Field(ge=1)] = 500

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from ``LAYERLAB_*`` variables; keyword arguments win over the environment."""
        env = os.environ
        values: dict[str, object] = {}
        if "LAYERLAB_DATA_DIR" in env:
            values["data_dir"] = Path(env["LAYERLAB_DATA_DIR"])
        if env.get("LAYERLAB_DATABASE_URL"):
            values["database_url"] = env["LAYERLAB_DATABASE_URL"]
        if env.get("LAYERLAB_TOKEN"):
            values["token"] = env["LAYERLAB_TOKEN"]
        if "LAYERLAB_ALLOWED_ORIGINS" in env:
            values["allowed_origins"] = _split(env["LAYERLAB_ALLOWED_ORIGINS"])
        if "LAYERLAB_ALLOWED_HOSTS" in env:
            values["allowed_hosts"] = _split(env["LAYERLAB_ALLOWED_HOSTS"])
        for key, name in (
            ("max_body_bytes", "LAYERLAB_MAX_BODY_BYTES"),
            ("max_upload_bytes", "LAYERLAB_MAX_UPLOAD_BYTES"),
            ("max_build_bytes", "LAYERLAB_MAX_BUILD_BYTES"),
            ("max_concurrent_runs", "LAYERLAB_MAX_RUNS"),
            ("train_threads", "LAYERLAB_TRAIN_THREADS"),
            ("cpu_workers", "LAYERLAB_CPU_WORKERS"),
            ("torch_workers", "LAYERLAB_TORCH_WORKERS"),
            ("cpu_max_pending", "LAYERLAB_CPU_MAX_PENDING"),
        ):
            if env.get(name):
                values[key] = int(env[name])
        if "LAYERLAB_DEMO" in env:
            values["demo"] = env["LAYERLAB_DEMO"].strip().lower() not in ("0", "false", "no", "")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'layerlab.db').resolve()}"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"
