"""Training events: one tagged union, discriminated on ``type``.

The trainer only ever calls ``emit(event)``. Whatever carries the events (a multiprocessing
queue, a websocket, a test's list) is someone else's business. Every event names its run and
carries a ``seq`` that increases by one per event of that run, so a consumer can tell order and
gaps without trusting arrival order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    seq: int = Field(0, ge=0, description="Monotonic per run, starting at 0.")
    time: float = Field(default_factory=time.time, description="Wall-clock seconds since the epoch.")


# --- payload pieces ---------------------------------------------------------------------------


class ParamGroupInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["decay", "no_decay", "all"]
    weight_decay: float
    params: list[str] = Field(description="Parameter names, e.g. 'conv1.weight'.")
    tensors: int
    elements: int


class ModelSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    params_total: int
    params_trainable: int
    params_frozen: int
    frozen: list[str] = Field(description="Names of the frozen parameters.")
    input_shape: list[int]
    output_shape: list[int]
    frozen_bn: list[str] = Field(default_factory=list, description="BatchNorm layers kept in eval mode.")


class DatasetSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    task: Literal["classification", "regression"]
    sample_shape: list[int]
    input_dtype: Literal["float32", "int64"]
    target_shape: list[int]
    num_classes: int | None
    class_names: list[str] | None
    n_train: int
    n_val: int
    loader: Literal["tensor", "dataloader"]


class LayerStat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: str = Field(description="The graph node id (the last module-path part that is one).")
    path: str = Field(description="The full dotted module path, e.g. 'block1.0.conv1'.")
    grad_norm: float | None = None
    weight_norm: float | None = None
    update_ratio: float | None = Field(None, description="||Δw|| / ||w|| for this step.")
    dead_fraction: float | None = Field(
        None, description="ReLU: fraction of output units that are zero for every sample of the batch."
    )


# --- the events -------------------------------------------------------------------------------


class RunQueued(_EventBase):
    type: Literal["run_queued"] = "run_queued"
    position: int = Field(ge=1, description="1 = next to start.")


class RunStarted(_EventBase):
    type: Literal["run_started"] = "run_started"
    model: ModelSummary
    param_groups: list[ParamGroupInfo]
    device: str
    device_name: str | None = Field(None, description="e.g. 'NVIDIA H200' on CUDA; None on the CPU.")
    threads: int | None = Field(None, description="CPU threads torch uses (torch.get_num_threads()).")
    precision: str
    dataset: DatasetSummary
    total_steps: int
    steps_per_epoch: int
    start_step: int = Field(0, description="Non-zero when resuming.")
    start_epoch: int = 0


class StepEvent(_EventBase):
    type: Literal["step"] = "step"
    step: int = Field(description="The last step in ``points``.")
    epoch: int
    points: list[tuple[int, float]] = Field(description="Every (step, loss) since the previous step event.")
    lr: float
    samples_per_s: float


class EpochMetrics(BaseModel):
    """One epoch's figures: the payload of an epoch event, and a row of a run's metrics."""

    model_config = ConfigDict(extra="forbid")

    epoch: int = Field(description="1-based.")
    step: int
    train_loss: float
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    lr: float
    seconds: float
    partial: bool = Field(False, description="The run ended (max_steps, stop) inside this epoch.")


class EpochEvent(_EventBase, EpochMetrics):
    type: Literal["epoch"] = "epoch"


class LayerStatsEvent(_EventBase):
    type: Literal["layer_stats"] = "layer_stats"
    step: int
    layers: list[LayerStat]


class CheckpointEvent(_EventBase):
    type: Literal["checkpoint"] = "checkpoint"
    path: str
    step: int
    epoch: int
    reason: Literal["epoch", "final", "stop"]


class WarningEvent(_EventBase):
    type: Literal["warning"] = "warning"
    message: str
    step: int | None = None


class RunPaused(_EventBase):
    type: Literal["run_paused"] = "run_paused"
    step: int


class RunResumed(_EventBase):
    type: Literal["run_resumed"] = "run_resumed"
    step: int


class RunFinished(_EventBase):
    type: Literal["run_finished"] = "run_finished"
    step: int
    epoch: int
    reason: Literal["completed", "max_steps", "early_stopping"]
    train_loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    checkpoint: str | None
    seconds: float


class RunFailed(_EventBase):
    type: Literal["run_failed"] = "run_failed"
    reason: str
    step: int | None = None
    hint: str | None = None
    node: str | None = Field(None, description="The graph node the failure concerns, if any.")
    errors: list[dict[str, Any]] = Field(default_factory=list, description="Graph errors, when invalid.")


class RunStopped(_EventBase):
    type: Literal["run_stopped"] = "run_stopped"
    step: int
    epoch: int
    checkpoint: str | None


Event = Annotated[
    Union[  # noqa: UP007
        RunQueued,
        RunStarted,
        StepEvent,
        EpochEvent,
        LayerStatsEvent,
        CheckpointEvent,
        WarningEvent,
        RunPaused,
        RunResumed,
        RunFinished,
        RunFailed,
        RunStopped,
    ],
    Field(discriminator="type"),
]
EventAdapter: TypeAdapter[Event] = TypeAdapter(Event)
TERMINAL_TYPES: frozenset[str] = frozenset({"run_finished", "run_failed", "run_stopped"})

Emit = Callable[[Event], None]


def parse_event(data: dict[str, Any]) -> Event:
    """Validate a JSON-ready dict (as sent across a process boundary) back into an event."""
    return EventAdapter.validate_python(data)


def is_terminal(event: Event) -> bool:
    return event.type in TERMINAL_TYPES


class Emitter:
    """Stamps ``run_id`` and ``seq`` on events and hands them to a sink.

    One per run; the trainer builds events without seq and this fills it in.
    """

    def __init__(self, run_id: str, sink: Emit, *, start_seq: int = 0) -> None:
        self.run_id = run_id
        self._sink = sink
        self._seq = start_seq

    def emit(self, event_cls: type[_EventBase], **fields: Any) -> Event:
        event = event_cls(run_id=self.run_id, seq=self._seq, **fields)
        self._seq += 1
        self._sink(event)  # type: ignore[arg-type]
        return event  # type: ignore[return-value]
