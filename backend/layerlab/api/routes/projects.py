"""Projects and their graph versions. Every save is a new version; restoring copies an old one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response, status
from sqlalchemy import select

from ..db import ACTIVE_STATUSES, GraphVersion, Project, Run, utcnow
from ..deps import SessionDep, StateDep
from ..schemas import (
    Problem,
    ProjectCreate,
    ProjectDetail,
    ProjectRename,
    ProjectSummary,
    VersionCreate,
    VersionDetail,
    VersionSummary,
)

router = APIRouter(prefix="/projects", tags=["projects"], responses={404: {"model": Problem}})

VersionNo = Annotated[int, Path(ge=1, le=2_147_483_647)]
EMPTY_GRAPH: dict[str, Any] = {"format": "layerlab.graph/1", "name": "model", "nodes": [], "edges": []}


def get_project(session: SessionDep, project_id: str) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise HTTPException(404, "project not found")
    return project


def get_version(session: SessionDep, project_id: str, version: int) -> GraphVersion:
    row = session.scalar(
        select(GraphVersion).where(GraphVersion.project_id == project_id, GraphVersion.version == version)
    )
    if row is None:
        raise HTTPException(404, "version not found")
    return row


def add_version(session: SessionDep, project: Project, graph: dict[str, Any], message: str | None) -> GraphVersion:
    project.latest_version += 1
    project.updated_at = utcnow()
    row = GraphVersion(project_id=project.id, version=project.latest_version, graph=graph, message=message)
    session.add(row)
    return row


def create_project(session: SessionDep, name: str, graph: dict[str, Any] | None, message: str | None = None) -> Project:
    project = Project(name=name)
    session.add(project)
    session.flush()
    add_version(session, project, graph if graph is not None else dict(EMPTY_GRAPH), message or "created")
    session.commit()
    return project


def _detail(session: SessionDep, project: Project) -> ProjectDetail:
    latest = get_version(session, project.id, project.latest_version)
    return ProjectDetail(**_summary(project).model_dump(), graph=latest.graph)


def _summary(project: Project) -> ProjectSummary:
    return ProjectSummary(id=project.id, name=project.name, created_at=project.created_at,
                          updated_at=project.updated_at, latest_version=project.latest_version)


def _version(row: GraphVersion, *, graph: bool) -> VersionSummary | VersionDetail:
    base = {"version": row.version, "message": row.message, "created_at": row.created_at}
    return VersionDetail(**base, project_id=row.project_id, graph=row.graph) if graph else VersionSummary(**base)


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: ProjectCreate, session: SessionDep) -> ProjectDetail:
    """Create a project; its graph (default empty) is version 1."""
    return _detail(session, create_project(session, body.name, body.graph))


@router.get("")
def list_projects(session: SessionDep) -> list[ProjectSummary]:
    """Every project, most recently changed first."""
    rows = session.scalars(select(Project).order_by(Project.updated_at.desc(), Project.name))
    return [_summary(p) for p in rows]


@router.get("/{project_id}")
def get(project_id: str, session: SessionDep) -> ProjectDetail:
    """A project with the graph of its latest version."""
    return _detail(session, get_project(session, project_id))


@router.patch("/{project_id}")
def rename(project_id: str, body: ProjectRename, session: SessionDep) -> ProjectSummary:
    """Rename a project."""
    project = get_project(session, project_id)
    project.name = body.name
    project.updated_at = utcnow()
    session.commit()
    return _summary(project)


@router.delete("/{project_id}", status_code=status.HTTP_204_NO_CONTENT, responses={409: {"model": Problem}})
def delete(project_id: str, session: SessionDep, state: StateDep) -> Response:
    """Delete a project and its versions (its finished runs stay, detached)."""
    project = get_project(session, project_id)
    runs = session.scalars(select(Run).where(Run.project_id == project_id))
    if any((state.runs.live_status(r.id) or r.status) in ACTIVE_STATUSES for r in runs):
        raise HTTPException(409, "project has active runs")
    session.delete(project)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{project_id}/versions", status_code=status.HTTP_201_CREATED)
def save(project_id: str, body: VersionCreate, session: SessionDep) -> VersionDetail:
    """Save the graph as a new version (saved as is, even with errors)."""
    project = get_project(session, project_id)
    row = add_version(session, project, body.graph, body.message)
    session.commit()
    return _version(row, graph=True)  # type: ignore[return-value]


@router.get("/{project_id}/versions")
def list_versions(project_id: str, session: SessionDep) -> list[VersionSummary]:
    """Every version of the project, newest first (without the graphs)."""
    get_project(session, project_id)
    rows = session.scalars(
        select(GraphVersion).where(GraphVersion.project_id == project_id).order_by(GraphVersion.version.desc())
    )
    return [_version(r, graph=False) for r in rows]


@router.get("/{project_id}/versions/{version}")
def get_one_version(project_id: str, version: VersionNo, session: SessionDep) -> VersionDetail:
    """One version with its graph."""
    get_project(session, project_id)
    return _version(get_version(session, project_id, version), graph=True)  # type: ignore[return-value]


@router.post("/{project_id}/versions/{version}/restore", status_code=status.HTTP_201_CREATED)
def restore(project_id: str, version: VersionNo, session: SessionDep) -> VersionDetail:
    """Make an old version current again, as a new version (history is never rewritten)."""
    project = get_project(session, project_id)
    old = get_version(session, project_id, version)
    row = add_version(session, project, old.graph, f"restored version {version}")
    session.commit()
    return _version(row, graph=True)  # type: ignore[return-value]
