"""The op catalog, the graph JSON Schema and the run config's form: what the editor's palette and forms
are built from."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from layerlab import catalog
from layerlab.graph import graph_json_schema
from layerlab.train.form import RunConfigForm, run_config_form

router = APIRouter(tags=["catalog"])


class CatalogOp(BaseModel):
    model_config = ConfigDict(extra="allow")

    op: str
    category: str
    help: str
    torch_class: str | None
    inputs: dict[str, Any]
    inferred: list[str]
    params: dict[str, Any]


class Catalog(BaseModel):
    format: str
    categories: list[str]
    ops: list[CatalogOp]


@cache
def _catalog() -> Catalog:  # the registry is fixed once layerlab is imported
    return Catalog.model_validate(catalog())


@router.get("/catalog")
def get_catalog() -> Catalog:
    """Every op: category, help, inputs and its parameters' JSON Schema."""
    return _catalog()


@router.get("/schema")
def get_schema() -> dict[str, Any]:
    """The JSON Schema of a layerlab.graph/1 document."""
    return graph_json_schema()


@cache
def _run_config_form() -> RunConfigForm:
    return run_config_form()


@router.get("/run-config", response_model_by_alias=True)
def get_run_config_form() -> RunConfigForm:
    """RunConfig's JSON Schema (types, ranges, defaults) and its form's groups and labels."""
    return _run_config_form()
