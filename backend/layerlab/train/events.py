"""Training events: one tagged union, discriminated on ``type``, and the log that numbers them.

The trainer only ever calls ``emit(event)``. Whatever carries the events (a run's log file, a
websocket, a test's list) is someone else's business. Every event names its run and carries a
``seq`` that increases by one per event of that run, so a consumer can tell order and gaps
without trusting arrival order.

A run's events live in one file, ``events.jsonl`` in its run directory (:class:`RunLog`). Seq
numbers come from one place, :class:`Emitter`, started from the log's next seq by whoever writes
the log at that moment: the executor while the run waits or after its process has ended, the
run's own process while it trains. Each event is in the file before anyone else sees it, so an
event a client has received survives any crash and its seq is never handed out twice.

What an event means for its run (the status it puts the run in, whether it is the last) is
defined here once, on the event types: :attr:`status` and :attr:`terminal`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

RunStatus = Literal["queued", "running", "paused", "finished", "failed", "stopped"]
ACTIVE_STATUSES: tuple[RunStatus, ...] = ("queued", "running", "paused")


class _EventBase(BaseModel):
    # NaN and infinite losses are written as NaN/Infinity in the log and read back as floats.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    status: ClassVar[RunStatus | None] = None  # the run's status after this event (None: unchanged)
    terminal: ClassVar[bool] = False  # the run's last event (until it is continued)

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


class Histogram(BaseModel):
    """Counts in ``len(counts)`` equal-width bins over [lo, hi] (``torch.histc``), finite values only."""

    model_config = ConfigDict(extra="forbid")

    lo: float
    hi: float
    counts: list[int]
    nonfinite: int = Field(0, description="NaN and infinite values, left out of the bins.")


class FeatureMaps(BaseModel):
    """The first ``len(lo)`` channels of a (C, H, W) output as 8-bit greyscale tiles, each channel
    scaled from its own [lo, hi] to 0..255 (lo == hi: all 0)."""

    model_config = ConfigDict(extra="forbid")

    channels: int = Field(description="Channels the output has; only the first len(lo) are sent.")
    height: int = Field(description="Tile height: the output's, or smaller when it was averaged down.")
    width: int
    source_size: tuple[int, int] = Field(description="(H, W) of the output itself.")
    lo: list[float] = Field(description="Per channel shown: the value drawn black.")
    hi: list[float] = Field(description="Per channel shown: the value drawn white.")
    pixels: str = Field(description="Base64 of len(lo) × height × width bytes, channel by channel, row by row.")


class LayerOutput(BaseModel):
    """One layer's output on the snapshot's sample, and its weights."""

    model_config = ConfigDict(extra="forbid")

    node: str = Field(description="The graph node id.")
    path: str = Field(description="The module path; a repeated block's node shows its first copy.")
    shape: list[int] = Field(description="The output's shape for this one sample (no batch dimension).")
    output: Histogram = Field(description="The output's values.")
    maps: FeatureMaps | None = Field(None, description="(C, H, W) outputs: the feature maps.")
    weights: Histogram | None = Field(None, description="The layer's own 'weight' parameter, if it has one.")


# --- the events -------------------------------------------------------------------------------


class RunQueued(_EventBase):
    status: ClassVar[RunStatus | None] = "queued"

    type: Literal["run_queued"] = "run_queued"
    position: int = Field(ge=1, description="1 = next to start.")
    behind: str | None = Field(None, description="The run it waits for: the one ahead in the queue, or "
                                                 "the running run whose device it needs.")


class RunStarting(_EventBase):
    """The run has left the queue and is being set up; ``phase`` says what it is waiting for."""

    type: Literal["run_starting"] = "run_starting"
    phase: Literal["process", "data", "model"] = Field(
        description="process: its worker process is still starting (importing torch); data: loading "
        "and preparing the dataset; model: building the model (and loading weights).")


class RunStarted(_EventBase):
    status: ClassVar[RunStatus | None] = "running"

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


class LayerSnapshotEvent(_EventBase):
    """What every layer makes of one fixed sample, after an epoch's validation (model in eval mode)."""

    type: Literal["layer_snapshot"] = "layer_snapshot"
    step: int
    epoch: int
    split: Literal["val", "train"] = Field(description="Where the sample comes from: the validation set, or "
                                           "the training set when there is no validation split.")
    sample: int = Field(description="The sample's index in that split.")
    layers: list[LayerOutput]


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
    status: ClassVar[RunStatus | None] = "paused"

    type: Literal["run_paused"] = "run_paused"
    step: int


class RunResumed(_EventBase):
    status: ClassVar[RunStatus | None] = "running"

    type: Literal["run_resumed"] = "run_resumed"
    step: int


class RunFinished(_EventBase):
    status: ClassVar[RunStatus | None] = "finished"
    terminal: ClassVar[bool] = True

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
    status: ClassVar[RunStatus | None] = "failed"
    terminal: ClassVar[bool] = True

    type: Literal["run_failed"] = "run_failed"
    reason: str
    step: int | None = None
    hint: str | None = None
    node: str | None = Field(None, description="The graph node the failure concerns, if any.")
    errors: list[dict[str, Any]] = Field(default_factory=list, description="Graph errors, when invalid.")


class RunStopped(_EventBase):
    status: ClassVar[RunStatus | None] = "stopped"
    terminal: ClassVar[bool] = True

    type: Literal["run_stopped"] = "run_stopped"
    step: int
    epoch: int
    checkpoint: str | None
    reason: Literal["requested", "interrupted"] = Field(
        "requested", description="interrupted: the server stopped (shut down or died) during the run; "
        "Continue goes on from the checkpoint.")


Event = Annotated[
    Union[  # noqa: UP007
        RunQueued,
        RunStarting,
        RunStarted,
        StepEvent,
        EpochEvent,
        LayerStatsEvent,
        LayerSnapshotEvent,
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

Emit = Callable[[Event], None]


def parse_event(data: dict[str, Any]) -> Event:
    """Validate a JSON-ready dict (as sent across a process boundary) back into an event."""
    return EventAdapter.validate_python(data)


def is_terminal(event: Event) -> bool:
    return event.terminal


class Emitter:
    """Stamps ``run_id`` and ``seq`` on events and hands them to a sink: the one place seq
    numbers are made. One per run and writer; ``start_seq`` is the log's next seq."""

    def __init__(self, run_id: str, sink: Emit, *, start_seq: int = 0) -> None:
        self.run_id = run_id
        self._sink = sink
        self._seq = start_seq

    @property
    def next_seq(self) -> int:
        return self._seq

    def emit(self, event_cls: type[_EventBase], **fields: Any) -> Event:
        event = event_cls(run_id=self.run_id, seq=self._seq, **fields)
        self._seq += 1
        self._sink(event)  # type: ignore[arg-type]
        return event  # type: ignore[return-value]


class RunLog:
    """A run's ``events.jsonl``: one event per line, appended and flushed one by one.

    The process that writes the log while a run trains holds an exclusive ``flock`` on it
    (:meth:`hold`), so a server starting up can tell a worker that is still finishing from one
    that is gone. A line cut short by a crash is ignored when reading, and the next append starts
    on a fresh line.
    """

    FILE = "events.jsonl"
    PID_FILE = "worker.pid"

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / self.FILE
        self._file: Any = None

    # --- reading ---------------------------------------------------------------------------

    def read(self, *, after: int = -1) -> list[Event]:
        """Every complete event with a seq above ``after``, in file order."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return [e for e in _parse_lines(data.split(b"\n")) if e.seq > after]

    def next_seq(self, *, at_least: int = 0) -> int:
        events = self.read()
        return max(events[-1].seq + 1 if events else 0, at_least)

    # --- writing ---------------------------------------------------------------------------

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, event: Event) -> None:
        """Write one event and flush it to the OS (it survives this process being killed)."""
        file = self._open()
        file.write(event.model_dump_json().encode() + b"\n")
        file.flush()

    def hold(self) -> None:
        """Take the writer's lock for this process's lifetime (released by the OS when it exits)."""
        fcntl.flock(self._open().fileno(), fcntl.LOCK_EX)
        self.path.with_name(self.PID_FILE).write_text(str(os.getpid()))

    def holder_pid(self) -> int | None:
        """The process that last took the writer's lock (see :meth:`hold`)."""
        try:
            return int(self.path.with_name(self.PID_FILE).read_text())
        except (OSError, ValueError):
            return None

    def _open(self) -> Any:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across appends
            if self._file.tell() > 0 and not _ends_with_newline(self.path):
                self._file.write(b"\n")  # a line cut short by a crash stays on its own
        return self._file

    def held_elsewhere(self) -> bool:
        """Whether another process (a run's worker) holds the writer's lock now."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock taken here
        return False

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


class LogTail:
    """Reads the events another process appends to a :class:`RunLog`, from where it left off."""

    def __init__(self, log: RunLog, *, offset: int = 0) -> None:
        self.path = log.path
        self._offset = offset
        self._rest = b""

    def poll(self) -> list[Event]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        if not chunk:
            return []
        self._offset += len(chunk)
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()  # the part after the last newline: not complete yet
        return _parse_lines(lines)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _parse_lines(lines: list[bytes]) -> list[Event]:
    out = []
    for line in lines:
        if not line.strip():
            continue
        try:
            out.append(EventAdapter.validate_json(line))
        except (ValidationError, json.JSONDecodeError, ValueError):
            continue  # a line cut short by a crash
    return out
