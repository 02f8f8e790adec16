"""The run form the API serves: RunConfig's JSON Schema and a layout that places every setting."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from layerlab.api import Settings, create_app
from layerlab.train import form
from layerlab.train.config import RunConfig


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict:
    with TestClient(create_app(Settings(data_dir=tmp_path_factory.mktemp("server")))) as c:
        r = c.get("/api/run-config")
        assert r.status_code == 200
        return r.json()


def test_every_setting_is_in_exactly_one_group(doc: dict) -> None:
    paths = [f["path"] for g in doc["groups"] for f in g["fields"]]
    assert sorted(paths) == sorted(p for p in form.setting_paths() if p != "data.upload")
    assert len(paths) == len(set(paths))
    assert [g["title"] for g in doc["groups"]] == [
        "Data", "Loss", "Optimizer", "Schedule", "Length & stopping", "Hardware", "Regularization", "Init"]


def test_schema_is_runconfigs_own(doc: dict) -> None:
    assert doc["schema"] == RunConfig.model_json_schema()
    lr = next(f for g in doc["groups"] for f in g["fields"] if f["path"] == "optimizer.lr")
    assert lr == {"path": "optimizer.lr", "label": "Learning rate", "common": True, "widget": None}
    assert doc["schema"]["$defs"]["OptimizerConfig"]["properties"]["lr"]["default"] == 1e-3


def test_a_setting_not_laid_out_still_appears() -> None:
    class Augment(BaseModel):
        hflip: bool = False

    class Extended(RunConfig):
        augment: Augment = Field(default_factory=Augment)
        warmup_note: str = ""

    groups = {g.id: g for g in form.run_config_form(Extended).groups}
    assert [(f.path, f.label, f.common) for f in groups["augment"].fields] == [("augment.hflip", "Hflip", False)]
    assert groups["augment"].title == "Augment"
    assert [f.path for f in groups["other"].fields] == ["warmup_note"]
