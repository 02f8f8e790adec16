"""LayerLab: a visual model builder for PyTorch.

The four stages, four modules:

    graph JSON ──► graph.py (format) ──► shapes.py (shapes & costs) ──► compile.py (torch) ──► train/ (worker)
"""

from .compile import GraphInvalidError, build
from .graph import FORMAT, Graph, GraphError, InitSpec, parse_graph
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
    "infer",
    "parse_graph",
]
__version__ = "0.1.0"
