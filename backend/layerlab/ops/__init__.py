"""The layer catalog: one registry entry per op, grouped by kind in the modules below.

Importing the package registers every entry, in palette order.
"""

from . import structure, conv, linear, sequence, norm, elementwise, pool, reshape, merge  # noqa: F401, I001  (registration order)
from .base import Inferred, MergeRule, NodeProblem, OpSpec, ParameterForm, Params, Shape, TensorInfo, TorchFunction
from .registry import CATEGORIES, by_torch_class, catalog, get_op, op_names, suggest_op

__all__ = [
    "CATEGORIES",
    "Inferred",
    "MergeRule",
    "NodeProblem",
    "OpSpec",
    "ParameterForm",
    "Params",
    "Shape",
    "TensorInfo",
    "TorchFunction",
    "by_torch_class",
    "catalog",
    "get_op",
    "op_names",
    "suggest_op",
]
