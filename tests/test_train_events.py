"""The event union: parsing by type, strictness, JSON round trips, seq stamping."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from layerlab.train import Emitter, EventAdapter, RunQueued, StepEvent, is_terminal, parse_event
from layerlab.train.events import Event, RunFailed, RunStopped, WarningEvent


def test_union_parses_by_type_and_round_trips_through_json() -> None:
    step = StepEvent(run_id="r", seq=3, step=7, epoch=1, points=[(6, 0.5), (7, 0.25)], lr=1e-3, samples_per_s=100.0)
    wire = step.model_dump_json()
    back = EventAdapter.validate_json(wire)
    assert isinstance(back, StepEvent) and back == step
    assert json.loads(wire)["points"] == [[6, 0.5], [7, 0.25]]
    queued = parse_event({"type": "run_queued", "run_id": "r", "seq": 0, "position": 2})
    assert isinstance(queued, RunQueued) and queued.position == 2


def test_union_is_strict() -> None:
    with pytest.raises(ValidationError):
        parse_event({"type": "run_exploded", "run_id": "r"})
    with pytest.raises(ValidationError):
        parse_event({"type": "warning", "run_id": "r", "message": "m", "colour": "red"})
    with pytest.raises(ValidationError):
        parse_event({"type": "run_queued", "run_id": "r", "position": 0})  # positions start at 1


def test_terminal_types() -> None:
    assert is_terminal(RunStopped(run_id="r", step=1, epoch=0, checkpoint=None))
    assert is_terminal(RunFailed(run_id="r", reason="killed"))
    assert not is_terminal(WarningEvent(run_id="r", message="m"))


def test_emitter_stamps_run_id_and_consecutive_seq() -> None:
    sent: list[Event] = []
    emitter = Emitter("run-7", sent.append, start_seq=5)
    emitter.emit(WarningEvent, message="a")
    emitter.emit(RunFailed, reason="b")
    assert [(e.run_id, e.seq, e.type) for e in sent] == [("run-7", 5, "warning"), ("run-7", 6, "run_failed")]
