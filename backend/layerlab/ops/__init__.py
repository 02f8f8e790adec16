"""The layer catalog: one registry entry per op (see layers.py)."""

from . import layers  # noqa: F401  (registers every entry)
from .base import Inferred, NodeProblem, OpSpec, Params, Shape, TensorInfo
from .registry import CATEGORIES, by_torch_class, catalog, get_op, op_names, suggest_op

__all__ = [
    "CATEGORIES",
    "Inferred",
    "NodeProblem",
    "OpSpec",
    "Params",
    "Shape",
    "TensorInfo",
    "by_torch_class",
    "catalog",
    "get_op",
    "op_names",
    "suggest_op",
]
