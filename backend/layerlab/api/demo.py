"""The demo project created on first start, so a new user can press Train at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from .db import Database, Project
from .routes.projects import create_project

DEMO_NAME = "Demo: digits CNN"


def demo_graph() -> dict[str, Any]:
    """A small CNN for the 8×8 digits: (1, 8, 8) → conv → BN → ReLU → pool → linear → 10 classes."""
    chain = [
        ("input", "Input", {"shape": [1, 8, 8]}),
        ("conv1", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": "same"}),
        ("bn1", "BatchNorm2d", {}),
        ("relu1", "ReLU", {}),
        ("pool1", "MaxPool2d", {"kernel_size": 2}),
        ("flatten", "Flatten", {}),
        ("fc", "Linear", {"out_features": 10}),
        ("output", "Output", {}),
    ]
    nodes = [
        {"id": node_id, "op": op, "params": params, "position": {"x": 0.0, "y": 100.0 * i}}
        for i, (node_id, op, params) in enumerate(chain)
    ]
    edges = [
        {"id": f"e_{a[0]}_{b[0]}", "source": a[0], "target": b[0]} for a, b in zip(chain, chain[1:])
    ]
    return {"format": "layerlab.graph/1", "name": "digits_cnn", "nodes": nodes, "edges": edges}


def ensure_demo(db: Database) -> str | None:
    """Create the demo project if the database has no project; return its id."""
    with db.session() as session:
        if session.scalar(select(func.count()).select_from(Project)):
            return None
        return create_project(session, DEMO_NAME, demo_graph(), "demo").id
