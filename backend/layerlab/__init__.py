"""LayerLab: a visual model builder for PyTorch.

The four stages, four places:

    graph JSON ─► graph.py (format) ─► shapes/ (shapes & costs) ─► compile.py (torch) ─► train/ (worker)

``import layerlab`` does not import torch: the format, the catalog, shape inference and code
export are pure Python; ``build`` and ``from_module`` import torch when first used.
"""

from typing import Any

from .codegen import to_python
from .graph import FORMAT, Graph, GraphError, GraphInvalidError, InitSpec, parse_graph
from .ops import catalog
from .shapes import Report, analyze, infer

__all__ = [
    "FORMAT",
    "Graph",
    "GraphError",
    "GraphInvalidError",
    "InitSpec",
    "Report",
    "analyze",
    "build",
    "catalog",
    "from_module",
    "infer",
    "parse_graph",
    "to_python",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "build":
        from .compile import build

        return build
    if name == "from_module":
        from .importer import from_module

        return from_module
    raise AttributeError(f"module 'layerlab' has no attribute {name!r}")
