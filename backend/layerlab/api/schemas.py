"""The API's request and response bodies. Requests forbid unknown keys; responses are plain data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from layerlab.graph import GraphError
from layerlab.train.config import DataConfig, RunConfig
from layerlab.train.events import EpochMetrics, LayerSnapshotEvent, LayerStatsEvent, RunStarted

Name = Annotated[str, Field(min_length=1, max_length=200)]
GraphJSON = Annotated[
    dict[str, Any],
    Field(description="A layerlab.graph/1 document (see GET /api/schema); saved as is, even when invalid."),
]
RunStatus = Literal["queued", "running", "paused", "finished", "failed", "stopped"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """Every 4xx/5xx body except 422: one short sentence."""

    detail: str


# The answer of a route whose CPU work waits for the app's worker processes (layerlab.offload).
BUSY: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "Every worker is busy and the line is full; retry."}}


class Invalid(BaseModel):
    """Every 422 body: what is wrong, pointed at a graph node or a request field."""

    detail: list[GraphError]


# --- projects ------------------------------------------------------------------------------------


class ProjectCreate(_Request):
    name: Name
    graph: GraphJSON | None = Field(None, description="The first version; default an empty graph.")


class ProjectRename(_Request):
    name: Name


class VersionCreate(_Request):
    graph: GraphJSON
    message: Annotated[str, Field(max_length=500)] | None = None


class ProjectSummary(BaseModel):
    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    latest_version: int


class ProjectDetail(ProjectSummary):
    graph: dict[str, Any] = Field(description="The graph of the latest version.")


class VersionSummary(BaseModel):
    version: int
    message: str | None
    created_at: datetime


class VersionDetail(VersionSummary):
    project_id: str
    graph: dict[str, Any]


# --- datasets ------------------------------------------------------------------------------------


class DatasetDescription(BaseModel):
    """What is known about any dataset, built-in or uploaded (``layerlab.train.data.describe``)."""

    task: Literal["classification", "regression"]
    sample_shape: list[int]
    input_dtype: str = "float32"
    num_classes: int | None
    class_names: list[str] | None
    samples: int = Field(description="How many samples (synthetic sets: at the default n_samples).")


class DatasetInfo(DatasetDescription):
    name: str
    description: str
    help: str = Field(description="Where the set comes from and what one sample is.")
    settings: list[str] = Field(description="The data settings it reads (n_samples, noise, ...).")
    synthetic: bool


class UploadInfo(DatasetDescription):
    id: str = Field(description="Use as config.data.upload.path with dataset 'upload'.")
    filename: str = Field(description="The name the file was uploaded under (display only).")
    kind: Literal["npz", "csv", "zip", "txt"]
    size: int
    created_at: datetime


class AugmentPreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: DataConfig = Field(description="The run's data settings: the dataset and its augment steps.")
    samples: int = Field(4, ge=1, le=8, description="Training images to show.")
    draws: int = Field(3, ge=1, le=6, description="Augmented versions of each.")
    seed: int = Field(0, ge=0, le=2**32 - 1)


class PreviewSample(BaseModel):
    label: str | None
    original: list[int] = Field(description="The image as loaded: (C, H, W) flattened, 0…255.")
    augmented: list[list[int]] = Field(description="Each draw through the random steps, same layout.")


class AugmentPreview(BaseModel):
    sample_shape: list[int]
    steps: list[str] = Field(description="The random steps applied, in order.")
    samples: list[PreviewSample]


class DatasetList(BaseModel):
    builtin: list[DatasetInfo]
    uploads: list[UploadInfo]
    accepts: list[str] = Field(description="The file suffixes an upload may have, e.g. '.npz' (the picker offers these).")


# --- runs ----------------------------------------------------------------------------------------


class RunCreate(_Request):
    project_id: Annotated[str, Field(max_length=64)]
    version: Annotated[int, Field(ge=1)] | None = Field(None, description="Default: the latest version.")
    name: Annotated[str, Field(max_length=200)] | None = None
    config: RunConfig = Field(
        default_factory=RunConfig,
        description="With dataset 'upload', data.upload.path is the id of an upload (POST /api/datasets).",
    )
    init_weights: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = Field(
        None, description="Start from uploaded weights (the id from POST /api/runs/weights); every tensor's name "
                          "and shape must match the graph.")


class RunCheckRequest(_Request):
    project_id: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="Check this project's latest version when no graph is given.")
    graph: GraphJSON | None = Field(None, description="The graph a run would train (as the editor holds it).")
    config: RunConfig = Field(
        default_factory=RunConfig,
        description="With dataset 'upload', data.upload.path is the id of an upload (POST /api/datasets).",
    )


class RunCheck(BaseModel):
    """Whether a run would start, and if not, every reason POST /api/runs would give (same words)."""

    ok: bool
    problems: list[GraphError] = Field(description="Each names its node and/or its setting ('config.data', ...).")


class FinetuneCreate(_Request):
    version: Annotated[int, Field(ge=1)] | None = Field(
        None, description="The graph to fine-tune, from the source run's project; default its latest version."
    )
    name: Annotated[str, Field(max_length=200)] | None = None
    config: RunConfig | None = Field(None, description="Default: the source run's config.")


class RunSummary(BaseModel):
    id: str
    project_id: str | None
    version: int | None
    name: str
    status: RunStatus
    parent_run_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    last_seq: int = Field(description="The seq of the last event; watch with after=last_seq for what follows.")
    step: int
    epoch: int
    total_steps: int | None
    train_loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    has_checkpoint: bool
    error: str | None


class RunDetail(RunSummary):
    graph: dict[str, Any]
    config: dict[str, Any]


class WeightsInfo(BaseModel):
    id: str
    filename: str
    tensors: int
    elements: int


class WorkerPool(BaseModel):
    ready: int = Field(description="Warm worker processes waiting for a run (torch and the trainer loaded).")


class RunAccepted(BaseModel):
    id: str
    status: RunStatus
    events_url: str = Field(description="The websocket path streaming this run's events.")


class EpochRow(EpochMetrics):
    """One epoch of a run's metrics (the figures of its epoch event)."""


class Metrics(BaseModel):
    run_id: str
    status: RunStatus
    last_seq: int = Field(description="The seq of the last event included; stream what follows "
                          "with after=last_seq.")
    steps: list[tuple[int, float]] = Field(description="Every (step, training loss).")
    lr: list[tuple[int, float]] = Field(description="(step, learning rate) at each step event.")
    times: list[tuple[int, float]] = Field(default_factory=list,
                                           description="(step, wall-clock seconds since the epoch) at each step event.")
    epochs: list[EpochRow]
    layer_stats: list[LayerStatsEvent] = Field(default_factory=list,
                                               description="Every layer_stats event: per-layer history.")
    snapshot: LayerSnapshotEvent | None = Field(None, description="The latest layer_snapshot event: what each "
                                                "layer made of one validation sample, and its weights.")
    started: RunStarted | None = Field(None, description="The latest run_started event (device, precision, "
                                           "dataset sizes, steps per epoch), if the run has started.")


class EventPage(BaseModel):
    run_id: str
    events: list[dict[str, Any]] = Field(description="Events in seq order, as streamed.")
    next_after: int = Field(description="Pass as after= to read on.")
    more: bool
