"""Graph IR on `torch.export`: capture, per-node metadata, reports, drawings and node-level diffs.

Passes take and return the graph: `graph, info = some_pass(graph, args)`.
"""

from flow.graph.analysis import analyse
from flow.graph.capture import Graph, accepted_inputs, capture
from flow.graph.diff import GraphDiff, diff_graphs
from flow.graph.draw import DrawResult, draw, to_dot
from flow.graph.ops import op_kind
from flow.graph.report import format_report, report

__all__ = [
    "DrawResult",
    "Graph",
    "GraphDiff",
    "accepted_inputs",
    "analyse",
    "capture",
    "diff_graphs",
    "draw",
    "format_report",
    "op_kind",
    "report",
    "to_dot",
]
