"""The catalog: one registry entry per op. ``register`` is the only way in."""

from __future__ import annotations

import difflib
from typing import Any

from .base import OpSpec

_REGISTRY: dict[str, OpSpec] = {}

CATEGORIES = (
    "Input / Output",
    "Convolution",
    "Linear",
    "Recurrent",
    "Attention",
    "Normalization",
    "Activation",
    "Pooling",
    "Regularization",
    "Shape",
    "Merge",
    "Structure",
)


def register(cls: type[OpSpec]) -> type[OpSpec]:
    """Class decorator: add an op to the catalog (its name must be new)."""
    if cls.name in _REGISTRY:
        raise ValueError(f"op {cls.name!r} is registered twice")
    if cls.category not in CATEGORIES:
        raise ValueError(f"op {cls.name!r} has unknown category {cls.category!r}")
    _REGISTRY[cls.name] = cls()
    return cls


def get_op(name: str) -> OpSpec:
    return _REGISTRY[name]


def op_names() -> list[str]:
    return list(_REGISTRY)


def suggest_op(name: str) -> str | None:
    match = difflib.get_close_matches(name, list(_REGISTRY), n=1, cutoff=0.6)
    if not match:
        lowered = {k.lower(): k for k in _REGISTRY}
        return lowered.get(name.lower())
    return match[0]


def by_torch_class(class_name: str) -> OpSpec | None:
    for spec in _REGISTRY.values():
        if spec.torch_class == class_name:
            return spec
    return None


def catalog() -> dict[str, Any]:
    """The whole catalog as JSON-ready data: categories in palette order, then every op."""
    return {
        "format": "layerlab.catalog/1",
        "categories": list(CATEGORIES),
        "ops": [spec.describe() for spec in _REGISTRY.values()],
    }
