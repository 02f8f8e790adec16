"""Runs: create from a project version and a run config, control them, read their history."""

from __future__ import annotations

import shutil
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Query, Response, UploadFile, status
from fastapi.responses import FileResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from layerlab.export import safe_name
from layerlab.train.config import RunConfig
from layerlab.train.events import LayerSnapshotEvent, LayerStatsEvent, RunStarted

from ..db import ACTIVE_STATUSES, Run
from ..deps import SessionDep, StateDep
from ..runs import checkpoint_file
from ..schemas import (
    BUSY,
    EpochRow,
    EventPage,
    FinetuneCreate,
    Invalid,
    Metrics,
    Problem,
    RunAccepted,
    RunCheck,
    RunCheckRequest,
    RunCreate,
    RunDetail,
    RunSummary,
    WeightsInfo,
    WorkerPool,
)

router = APIRouter(prefix="/runs", tags=["runs"], responses={404: {"model": Problem}})

Seq = Annotated[int, Query(ge=-1, le=2**62, description="Only events with a larger seq.")]
RUN_ID_PATTERN = r"^[0-9a-f]{32}$"


def get_run(session: SessionDep, state: StateDep, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise HTTPException(404, "run not found")
    return state.runs.live_overlay(run)


def summary(run: Run, state: StateDep) -> RunSummary:
    return RunSummary(
        id=run.id, project_id=run.project_id, version=run.version, name=run.name, status=run.status,
        parent_run_id=run.parent_run_id, created_at=run.created_at, started_at=run.started_at,
        finished_at=run.finished_at, last_seq=run.last_seq, step=run.step, epoch=run.epoch,
        total_steps=run.total_steps, train_loss=run.train_loss, val_loss=run.val_loss,
        val_accuracy=run.val_accuracy, error=run.error,
        has_checkpoint=checkpoint_file(state.runs.runs_dir, run.id, run.checkpoint) is not None,
    )


def _public_config(config: dict[str, Any], state: StateDep) -> dict[str, Any]:
    """The config as clients see it: no server paths, the upload id instead."""
    upload = (config.get("data") or {}).get("upload")
    if upload and isinstance(upload.get("path"), str):
        upload = {**upload, "path": upload["path"].rsplit("/", 1)[-1].split(".", 1)[0]}
        config = {**config, "data": {**config["data"], "upload": upload}}
    return config


def _accepted(run: Run) -> RunAccepted:
    return RunAccepted(id=run.id, status="queued", events_url=f"/api/runs/{run.id}/events")


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses={422: {"model": Invalid}, **BUSY})
def create(body: RunCreate, session: SessionDep, state: StateDep) -> RunAccepted:
    """Start training a project version (default the latest) under a run config."""
    return _accepted(state.runs.start(session, project_id=body.project_id, version=body.version, name=body.name,
                                      config=body.config, init_weights=body.init_weights))


@router.post("/check", responses={422: {"model": Invalid}, **BUSY})
def check(body: RunCheckRequest, session: SessionDep, state: StateDep) -> RunCheck:
    """Would a run of this graph under this config start? The start's own checks (graph, memory,
    dataset against the graph and loss), answered as a list instead of a 422; nothing is saved."""
    problems = state.runs.check(session, graph=body.graph, config=body.config, project_id=body.project_id)
    return RunCheck(ok=not problems, problems=problems)


@router.post("/weights", status_code=status.HTTP_201_CREATED,
             responses={413: {"model": Problem}, 422: {"model": Invalid}})
async def upload_weights(file: Annotated[UploadFile, File(description=".safetensors, or a .pt/.pth state_dict")],
                         state: StateDep) -> WeightsInfo:
    """Upload weights to start a run from; a .pt is read with torch.load(weights_only=True)."""
    filename = (file.filename or "weights").replace("\\", "/").rsplit("/", 1)[-1][:255]
    body = bytearray()
    while chunk := await file.read(1 << 20):
        body += chunk
        if len(body) > state.settings.max_upload_bytes:
            raise HTTPException(413, "request body too large")
    return await run_in_threadpool(state.runs.store_weights, filename, bytes(body))


@router.get("")
def list_runs(session: SessionDep, state: StateDep,
              project_id: Annotated[str | None, Query(max_length=64)] = None) -> list[RunSummary]:
    """Every run (of one project, if given), newest first."""
    query = select(Run).order_by(Run.created_at.desc())
    if project_id is not None:
        query = query.where(Run.project_id == project_id)
    return [summary(state.runs.live_overlay(r), state) for r in session.scalars(query)]


@router.get("/workers")
def workers(state: StateDep) -> WorkerPool:
    """How many warm worker processes wait, ready to start a run at once."""
    return WorkerPool(ready=state.runs.ready_workers())


@router.get("/{run_id}")
def get(run_id: str, session: SessionDep, state: StateDep) -> RunDetail:
    """One run with its graph and config."""
    run = get_run(session, state, run_id)
    return RunDetail(**summary(run, state).model_dump(), graph=run.graph, config=_public_config(run.config, state))


def _status(run: Run, state: StateDep) -> str:
    return state.runs.live_status(run.id) or run.status


@router.post("/{run_id}/stop", status_code=status.HTTP_202_ACCEPTED, responses={409: {"model": Problem}})
def stop(run_id: str, session: SessionDep, state: StateDep) -> RunSummary:
    """Stop gracefully: the run checkpoints after the current batch, then ends as stopped."""
    run = get_run(session, state, run_id)
    if _status(run, state) not in ACTIVE_STATUSES:
        raise HTTPException(409, "run is not active")
    state.runs.stop(run_id)
    return summary(run, state)


@router.post("/{run_id}/kill", status_code=status.HTTP_202_ACCEPTED, responses={409: {"model": Problem}})
def kill(run_id: str, session: SessionDep, state: StateDep) -> RunSummary:
    """End the run now, without a checkpoint."""
    run = get_run(session, state, run_id)
    if _status(run, state) not in ACTIVE_STATUSES:
        raise HTTPException(409, "run is not active")
    state.runs.kill(run_id)
    return summary(run, state)


@router.post("/{run_id}/pause", status_code=status.HTTP_202_ACCEPTED, responses={409: {"model": Problem}})
def pause(run_id: str, session: SessionDep, state: StateDep) -> RunSummary:
    """Hold the run after the current batch."""
    run = get_run(session, state, run_id)
    if _status(run, state) not in ("queued", "running"):
        raise HTTPException(409, "run is not running")
    state.runs.pause(run_id)
    return summary(run, state)


@router.post("/{run_id}/resume", status_code=status.HTTP_202_ACCEPTED, responses={409: {"model": Problem}})
def resume(run_id: str, session: SessionDep, state: StateDep) -> RunSummary:
    """Continue a paused run."""
    run = get_run(session, state, run_id)
    if not state.runs.can_resume(run_id):
        raise HTTPException(409, "run is not paused")
    state.runs.resume(run_id)
    return summary(run, state)


@router.post("/{run_id}/continue", status_code=status.HTTP_202_ACCEPTED,
             responses={409: {"model": Problem}, 422: {"model": Invalid}, **BUSY})
def continue_run(run_id: str, session: SessionDep, state: StateDep) -> RunSummary:
    """Continue a stopped run from its checkpoint, under the same id: steps, losses and event
    numbers go on where it stopped, as if it had never stopped."""
    run = get_run(session, state, run_id)
    state.runs.continue_run(session, run)
    return summary(run, state)


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT, responses={409: {"model": Problem}})
def delete(run_id: str, session: SessionDep, state: StateDep) -> Response:
    """Delete a finished run, its events and its checkpoints."""
    run = get_run(session, state, run_id)
    if _status(run, state) in ACTIVE_STATUSES:
        raise HTTPException(409, "run is active")
    state.runs.forget(run_id)
    session.delete(run)
    session.commit()
    folder = state.runs.runs_dir / run.id
    if folder.is_dir() and folder.resolve().is_relative_to(state.runs.runs_dir):
        shutil.rmtree(folder, ignore_errors=True)
    state.runs.publish_deleted(run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{run_id}/metrics")
def metrics(run_id: str, session: SessionDep, state: StateDep) -> Metrics:
    """The whole loss curve and the per-epoch metrics so far."""
    run = get_run(session, state, run_id)
    # One moment's view: the row's status goes with its last_seq, so nothing newer is taken here
    # (a run_started read beside a "queued" row would leave the page queued for good); what came
    # since reaches the client over the websocket, which replays after last_seq.
    upto = run.last_seq
    # Only the latest snapshot (they are large), read first: an event stored in between has a
    # higher seq and so comes with the history below, and last_seq never passes over one.
    snapshot = state.runs.latest(run_id, "layer_snapshot")
    if snapshot is not None and snapshot["seq"] > upto:
        snapshot = None
    events = [e for e in state.runs.history(run_id, types=("step", "epoch", "run_started", "layer_stats"))
              if e["seq"] <= upto]
    steps: list[tuple[int, float]] = []
    lrs: list[tuple[int, float]] = []
    times: list[tuple[int, float]] = []
    epochs: list[EpochRow] = []
    started: RunStarted | None = None
    layer_stats: list[LayerStatsEvent] = []
    for e in events:
        if e["type"] == "step":
            steps.extend((int(p[0]), p[1]) for p in e["points"] if p[1] is not None)
            lrs.append((e["step"], e["lr"]))
            times.append((e["step"], e["time"]))
        elif e["type"] == "epoch":
            epochs.append(EpochRow.model_validate({k: e.get(k) for k in EpochRow.model_fields}))
        elif e["type"] == "layer_stats":
            layer_stats.append(LayerStatsEvent.model_validate(e))
        else:
            started = RunStarted.model_validate(e)
    last_seq = max([e["seq"] for e in events[-1:]] + ([snapshot["seq"]] if snapshot else []), default=-1)
    return Metrics(run_id=run_id, status=run.status, last_seq=last_seq, steps=steps, lr=lrs, times=times,
                   epochs=epochs, started=started, layer_stats=layer_stats,
                   snapshot=LayerSnapshotEvent.model_validate(snapshot) if snapshot else None)


@router.get("/{run_id}/events/history")
def event_history(run_id: str, session: SessionDep, state: StateDep, after: Seq = -1,
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> EventPage:
    """Stored events after ``after``, in seq order (the HTTP twin of the websocket's replay)."""
    get_run(session, state, run_id)
    events = state.runs.history(run_id, after=after, limit=limit + 1)
    more = len(events) > limit
    events = events[:limit]
    return EventPage(run_id=run_id, events=events, next_after=events[-1]["seq"] if events else after, more=more)


@router.get("/{run_id}/checkpoint", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "model.safetensors"}})
def checkpoint(run_id: str, session: SessionDep, state: StateDep) -> FileResponse:
    """The weights of the run's latest checkpoint (safetensors)."""
    run = get_run(session, state, run_id)
    path = checkpoint_file(state.runs.runs_dir, run.id, run.checkpoint)
    if path is None:
        raise HTTPException(404, "run has no checkpoint")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{safe_name(run.name or run.id)}.safetensors")


@router.post("/{run_id}/finetune", status_code=status.HTTP_202_ACCEPTED,
             responses={409: {"model": Problem}, 422: {"model": Invalid}, **BUSY})
def finetune(run_id: str, body: FinetuneCreate, session: SessionDep, state: StateDep) -> RunAccepted:
    """A new run that starts from this run's latest weights (matching layers are copied)."""
    source = get_run(session, state, run_id)
    if checkpoint_file(state.runs.runs_dir, source.id, source.checkpoint) is None:
        raise HTTPException(409, "run has no checkpoint")
    if source.project_id is None:
        raise HTTPException(409, "run has no project")
    config = body.config or RunConfig.model_validate(_public_config(source.config, state))
    checkpoint_dir = str(checkpoint_file(state.runs.runs_dir, source.id, source.checkpoint).parent)  # type: ignore[union-attr]
    return _accepted(state.runs.start(session, project_id=source.project_id, version=body.version,
                                      name=body.name or f"{source.name} (fine-tuned)", config=config,
                                      parent=source, init_from=checkpoint_dir))

