"""The run form the API serves: RunConfig's JSON Schema and a layout that places every setting."""

from __future__ import annotations

from types import UnionType
from typing import Any, Union, get_args, get_origin

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, ValidationError

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
    assert lr == {"path": "optimizer.lr", "label": "Learning rate", "common": True, "widget": None, "shown_when": None}
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


# A value other than the default for each setting the form shows only for some choices.
CHANGED: dict[str, Any] = {
    "optimizer.momentum": 0.5, "optimizer.nesterov": True, "optimizer.betas": [0.8, 0.99], "optimizer.eps": 1e-6,
    "schedule.step_size": 7, "schedule.gamma": 0.5, "schedule.min_lr": 1e-4, "schedule.pct_start": 0.5,
    "loss.beta": 0.5, "loss.label_smoothing": 0.1, "init.std": 0.5,
}


def _what_torch_gets(config: RunConfig, section: str) -> Any:
    """What the run hands torch from one section of its config: the optimizer's hyperparameters,
    the learning rate at every step, the loss module's settings, the initial weights."""
    import torch

    from layerlab import build
    from layerlab.api.demo import demo_graph
    from layerlab.train.optim import LossFn, make_optimizer, make_scheduler

    def optimizer() -> torch.optim.Optimizer:
        return make_optimizer([{"params": [torch.nn.Parameter(torch.zeros(2))]}], config.optimizer)

    if section == "optimizer":
        opt = optimizer()
        return type(opt).__name__, opt.defaults
    if section == "schedule":
        opt = optimizer()
        sched = make_scheduler(opt, config.schedule, base_lr=config.optimizer.lr, total_steps=2_500)
        lrs = []
        for _ in range(2_500):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return lrs
    if section == "loss":
        fn = LossFn(config.loss, output_shape=[4]).fn
        return type(fn).__name__, {k: v for k, v in vars(fn).items() if not k.startswith("_") and k != "training"}
    model = build(demo_graph(), init=config.init_arg(), seed=0)
    return {k: v.tolist() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("path", sorted(form._SHOWN_WHEN))
def test_a_setting_is_shown_for_exactly_the_choices_torch_reads_it_for(path: str) -> None:
    """The form hides a setting while it does nothing: for each choice of the setting it depends on,
    changing it must change what torch receives exactly when the form shows it (a change the config
    refuses for that choice counts as doing nothing)."""
    [(control, shown)] = form._SHOWN_WHEN[path].items()
    section, name = control.split(".")
    model = RunConfig.model_fields[section].annotation
    model = next(a for a in get_args(model) if a is not type(None)) if get_origin(model) in (Union, UnionType) else model
    choices = get_args(model.model_fields[name].annotation)
    assert set(shown) < set(choices), (path, shown)
    for choice in choices:
        base = {section: {name: choice}}
        before = _what_torch_gets(RunConfig.model_validate(base), section)
        key = path.split(".")[1]
        try:
            changed = RunConfig.model_validate({section: {name: choice, key: CHANGED[path]}})
        except ValidationError:
            reads_it = False
        else:
            reads_it = _what_torch_gets(changed, section) != before
        assert reads_it == (choice in shown), f"{path} with {control}={choice}: torch {'reads' if reads_it else 'ignores'} it"


DATASET_CHANGED: dict[str, Any] = {"n_samples": 57, "noise": 0.37, "num_classes": 2, "signal_length": 32,
                                   "seq_length": 12, "horizon": 3}


def test_a_dataset_setting_is_shown_for_exactly_the_datasets_that_read_it() -> None:
    """Loaded for real: each built-in dataset with each dataset setting changed gives other data
    exactly when the form shows that setting for it."""
    import numpy as np

    from layerlab.train.config import DataConfig
    from layerlab.train.data import DatasetError, load_dataset
    from layerlab.train.datasets import REGISTRY

    fields = {f.path: f for g in form.run_config_form().groups for f in g.fields}
    assert {f"data.{k}" for k in DATASET_CHANGED} <= {p for p, f in fields.items() if f.shown_when}
    for name in REGISTRY:
        before = load_dataset(DataConfig(dataset=name), seed=0)
        for key, value in DATASET_CHANGED.items():
            shown = name in fields[f"data.{key}"].shown_when["data.dataset"]
            try:
                after = load_dataset(DataConfig(dataset=name, **{key: value}), seed=0)
            except (ValidationError, DatasetError):
                reads_it = False
            else:
                reads_it = after.x.shape != before.x.shape or not (np.array_equal(after.x, before.x)
                                                                    and np.array_equal(after.y, before.y))
            assert reads_it == shown, f"{name} {'reads' if reads_it else 'ignores'} {key}"
