"""How the run configuration is laid out as a form: groups, labels, and which settings are common.

The form itself is drawn from RunConfig's JSON Schema (types, ranges, defaults); this only says
where each setting sits. A setting not placed here still appears, under "advanced" in the group of
its section, so a field added to RunConfig is never missing from the form.
"""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field

from .config import RunConfig
from .datasets import REGISTRY


class FormField(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Dotted path into RunConfig, e.g. 'optimizer.lr'.")
    label: str = Field(description="What the control is called, e.g. 'Learning rate'.")
    common: bool = Field(False, description="Shown at once; the others sit under 'advanced'.")
    widget: Literal["dataset"] | None = Field(
        None, description="'dataset': the dataset picker, which also sets data.upload."
    )
    shown_when: dict[str, list[str]] | None = Field(
        None, description="Shown only while each of these settings holds one of these values, e.g. "
        "{'optimizer.name': ['sgd', 'rmsprop']}: the setting does nothing otherwise."
    )


class FormGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    fields: list[FormField]


class RunConfigForm(BaseModel):
    """RunConfig's JSON Schema and the layout of its form."""

    model_config = ConfigDict(extra="forbid")

    json_schema: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    groups: list[FormGroup]


# (path, label, common); the group order is the form's order.
_LAYOUT: list[tuple[str, str, list[tuple[str, str, bool]]]] = [
    ("data", "Data", [
        ("data.dataset", "Dataset", True),
        ("data.batch_size", "Batch size", True),
        ("data.val_split", "Validation split", True),
        ("data.shuffle", "Shuffle", False),
        ("data.normalize", "Normalize inputs", False),
        ("data.normalize_targets", "Normalize targets", False),
        ("data.n_samples", "Samples (synthetic)", False),
        ("data.noise", "Noise (synthetic)", False),
        ("data.num_classes", "Classes (synthetic)", False),
        ("data.signal_length", "Signal length", False),
        ("seed", "Seed", False),
    ]),
    ("loss", "Loss", [
        ("loss.name", "Loss", True),
        ("loss.beta", "Smooth L1 beta", False),
    ]),
    ("optimizer", "Optimizer", [
        ("optimizer.name", "Optimizer", True),
        ("optimizer.lr", "Learning rate", True),
        ("optimizer.momentum", "Momentum", False),
        ("optimizer.nesterov", "Nesterov", False),
        ("optimizer.betas", "Betas", False),
        ("optimizer.eps", "Epsilon", False),
    ]),
    ("schedule", "Schedule", [
        ("schedule.name", "Schedule", True),
        ("schedule.warmup_steps", "Warm-up steps", False),
        ("schedule.step_size", "Step size", False),
        ("schedule.gamma", "Gamma", False),
        ("schedule.min_lr", "Minimum learning rate", False),
        ("schedule.pct_start", "One-cycle rise fraction", False),
    ]),
    ("length", "Length & stopping", [
        ("epochs", "Epochs", True),
        ("max_steps", "Max steps", False),
        ("patience", "Early-stopping patience", False),
        ("min_delta", "Early-stopping min delta", False),
        ("checkpoint_every_epochs", "Checkpoint every N epochs", False),
    ]),
    ("hardware", "Hardware", [
        ("device", "Device", True),
        ("precision", "Precision", True),
        ("devices", "Devices (data-parallel)", False),
        ("channels_last", "Channels last", False),
        ("compile", "torch.compile", False),
        ("data.loader", "Data loader", False),
        ("data.num_workers", "Loader workers", False),
        ("step_event_interval_s", "Step event interval (s)", False),
        ("layer_stats_every", "Layer statistics every N steps", False),
    ]),
    ("regularization", "Regularization", [
        ("optimizer.weight_decay", "Weight decay", True),
        ("optimizer.weight_decay_all", "Decay all parameters", False),
        ("optimizer.l1", "L1 penalty", False),
        ("optimizer.grad_clip", "Gradient clipping (max norm)", False),
        ("loss.label_smoothing", "Label smoothing", False),
        ("freeze_bn_stats", "Freeze BatchNorm statistics", False),
    ]),
    ("init", "Init", [
        ("init.scheme", "Init scheme", True),
        ("init.std", "Init std (normal)", False),
    ]),
]
# Set through another control: the dataset picker chooses an upload.
_COVERED = {"data.upload"}
# Settings that do something only for some choices of another (what train/optim.py and the loss
# pass to torch); the form shows them only then. tests/test_run_form.py checks each against torch.
_SHOWN_WHEN: dict[str, dict[str, list[str]]] = {
    "optimizer.momentum": {"optimizer.name": ["sgd", "rmsprop"]},
    "optimizer.nesterov": {"optimizer.name": ["sgd"]},
    "optimizer.betas": {"optimizer.name": ["adam", "adamw"]},
    "optimizer.eps": {"optimizer.name": ["adam", "adamw", "rmsprop"]},
    "schedule.step_size": {"schedule.name": ["step"]},
    "schedule.gamma": {"schedule.name": ["step"]},
    "schedule.min_lr": {"schedule.name": ["cosine"]},
    "schedule.pct_start": {"schedule.name": ["one_cycle"]},
    "loss.beta": {"loss.name": ["smooth_l1"]},
    "loss.label_smoothing": {"loss.name": ["cross_entropy"]},
    "init.std": {"init.scheme": ["normal"]},
}


def _dataset_settings() -> dict[str, dict[str, list[str]]]:
    """A built-in dataset's own settings (a generated set's size and noise, say) are shown while a
    dataset that reads them is chosen: the registry says which (``DatasetEntry.settings``)."""
    readers: dict[str, list[str]] = {}
    for entry in REGISTRY.values():
        for name in entry.settings:
            readers.setdefault(f"data.{name}", []).append(entry.name)
    return {path: {"data.dataset": names} for path, names in readers.items()}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (also through ``X | None``), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        models = [m for a in get_args(annotation) if (m := _model_of(a)) is not None]
        return models[0] if len(models) == 1 else None
    return None


def setting_paths(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """Every leaf setting of the config as a dotted path, in declaration order."""
    out: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        sub = _model_of(info.annotation)
        if sub is not None and path not in _COVERED:
            out.extend(setting_paths(sub, f"{path}."))
        else:
            out.append(path)
    return out


def _label(path: str) -> str:
    return path.rsplit(".", 1)[-1].replace("_", " ").capitalize()


def run_config_form(config: type[BaseModel] = RunConfig) -> RunConfigForm:
    """The form of ``config`` (RunConfig, or a model extending it)."""
    shown_when = _SHOWN_WHEN | _dataset_settings()
    groups = {gid: FormGroup(id=gid, title=title, fields=[FormField(path=p, label=label, common=common,
                                                                     widget="dataset" if p == "data.dataset" else None,
                                                                     shown_when=shown_when.get(p))
                                                           for p, label, common in fields])
              for gid, title, fields in _LAYOUT}
    placed = {f.path for g in groups.values() for f in g.fields} | _COVERED
    for path in setting_paths(config):
        if path in placed:
            continue
        # Not placed: the group of its section (a new section gets its own group), else "Other".
        gid = path.split(".", 1)[0] if "." in path else "other"
        group = groups.setdefault(gid, FormGroup(id=gid, title=_label(gid), fields=[]))
        group.fields.append(FormField(path=path, label=_label(path), shown_when=shown_when.get(path)))
    return RunConfigForm(schema=config.model_json_schema(), groups=list(groups.values()))
