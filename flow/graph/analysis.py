"""Analysis pass: run the graph once on its example inputs and attach metadata to every node.

`node.meta["flow"]` gets a `NodeInfo` (op kind, owning module, output shapes and dtypes, parameters
the node reads). Running the module (rather than trusting export's fake tensors) keeps the
metadata true after passes that add or rewire nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx

from flow.graph.capture import Graph, owner
from flow.graph.ops import op_kind, op_name


@dataclass
class NodeInfo:
    """Metadata of one node: kind, op, owner module, output shapes/dtypes, parameter elements read."""

    kind: str
    op: str
    module: str
    shapes: list[tuple[int, ...]] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)
    params: int = 0
    param_names: list[str] = field(default_factory=list)


class _Recorder(fx.Interpreter):
    """Interpreter that keeps every node's output value (tensors only, by structure)."""

    def __init__(self, module: fx.GraphModule):
        super().__init__(module)
        self.values: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        self.values[n] = out
        return out


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if hasattr(value, "to_tuple"):
        return _tensors(value.to_tuple())
    return []


def record_values(graph: Graph, inputs: dict[str, Any] | None = None) -> dict[fx.Node, Any]:
    """Run the graph with an interpreter; return each node's output (placeholders filled by name)."""
    feed = dict(graph.inputs if inputs is None else inputs)
    placeholders = [n for n in graph.module.graph.nodes if n.op == "placeholder"]
    missing = [p.target for p in placeholders if p.target not in feed]
    if missing:
        raise ValueError(f"inputs {missing} are missing; the graph takes {[p.target for p in placeholders]}")
    rec = _Recorder(graph.module)
    with torch.no_grad():
        rec.run(*[feed[p.target] for p in placeholders])
    return rec.values


def analyse(graph: Graph, args: dict[str, Any] | None = None) -> tuple[Graph, dict[str, Any]]:
    """Attach `NodeInfo` to each node; info: node count, counts by kind, distinct parameter elements."""
    args = args or {}
    values = record_values(graph, args.get("inputs"))
    seen: dict[int, int] = {}
    counts: dict[str, int] = {}
    for node in graph.module.graph.nodes:
        tensors = _tensors(values.get(node))
        params, names = 0, []
        for src in [node] if node.op == "get_attr" else node.all_input_nodes:
            if src.op != "get_attr":
                continue
            value = values.get(src)
            if isinstance(value, torch.nn.Parameter):
                params += value.numel()
                names.append(str(src.target))
                seen[id(value)] = value.numel()
        info = NodeInfo(
            kind=op_kind(node),
            op=op_name(node),
            module=owner(node),
            shapes=[tuple(t.shape) for t in tensors],
            dtypes=[str(t.dtype).replace("torch.", "") for t in tensors],
            params=params,
            param_names=names,
        )
        node.meta["flow"] = info
        counts[info.kind] = counts.get(info.kind, 0) + 1
    return graph, {"nodes": len(graph.module.graph.nodes), "kinds": counts, "parameters": sum(seen.values())}
