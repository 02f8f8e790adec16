"""The training engine: run configuration, datasets, the trainer, events and executors.

The trainer reports only through ``emit(event)``; executors carry events out of the worker
process. See docs/training.md.
"""

from __future__ import annotations

from .checkpoint import CheckpointError, read_meta, read_state, read_weights
from .config import (
    DataConfig,
    InitConfig,
    LossConfig,
    OptimizerConfig,
    RunConfig,
    ScheduleConfig,
    UploadRef,
)
from .control import Control, ProcessControl
from .data import ArrayDataset, DatasetError, PreparedData, load_dataset, prepare
from .events import (
    CheckpointEvent,
    DatasetSummary,
    Emitter,
    EpochEvent,
    Event,
    EventAdapter,
    LayerStat,
    LayerStatsEvent,
    ModelSummary,
    ParamGroupInfo,
    RunFailed,
    RunFinished,
    RunPaused,
    RunQueued,
    RunResumed,
    RunStarted,
    RunStopped,
    StepEvent,
    WarningEvent,
    is_terminal,
    parse_event,
)
from .executor import Executor, LocalExecutor, RunState
from .spec import ModelSpec, RunSetupError, check_data, check_run, spec_from_graph
from .trainer import RunOutcome, Trainer, frozen_batchnorms, resolve_device, set_train_mode, train, train_spec

__all__ = [
    "ArrayDataset",
    "CheckpointError",
    "CheckpointEvent",
    "Control",
    "DataConfig",
    "DatasetError",
    "DatasetSummary",
    "Emitter",
    "EpochEvent",
    "Event",
    "EventAdapter",
    "Executor",
    "InitConfig",
    "LayerStat",
    "LayerStatsEvent",
    "LocalExecutor",
    "LossConfig",
    "ModelSpec",
    "ModelSummary",
    "OptimizerConfig",
    "ParamGroupInfo",
    "PreparedData",
    "ProcessControl",
    "RunConfig",
    "RunFailed",
    "RunFinished",
    "RunOutcome",
    "RunPaused",
    "RunQueued",
    "RunResumed",
    "RunSetupError",
    "RunStarted",
    "RunState",
    "RunStopped",
    "ScheduleConfig",
    "StepEvent",
    "Trainer",
    "UploadRef",
    "WarningEvent",
    "check_data",
    "check_run",
    "frozen_batchnorms",
    "is_terminal",
    "load_dataset",
    "parse_event",
    "prepare",
    "read_meta",
    "read_state",
    "read_weights",
    "resolve_device",
    "set_train_mode",
    "spec_from_graph",
    "train",
    "train_spec",
]
