"""Graph report: op counts (by kind and by op) and parameter counts by owning module.

Parameters are read from the graph's `get_attr` nodes and counted once each, even when shared.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from flow.graph.capture import Graph
from flow.graph.ops import op_kind, op_name


def report(graph: Graph, depth: int = 4) -> dict[str, Any]:
    """Counts by kind and op; parameters by module path truncated to `depth` components."""
    calls = [n for n in graph.module.graph.nodes if n.op in ("call_function", "call_module", "call_method")]
    by_kind = Counter(op_kind(n) for n in calls)
    by_op = Counter(op_name(n) for n in calls)
    by_module: Counter[str] = Counter()
    seen: set[int] = set()
    total = 0
    for node in graph.module.graph.nodes:
        if node.op != "get_attr":
            continue
        value = _fetch(graph.module, str(node.target))
        if not isinstance(value, torch.nn.Parameter) or id(value) in seen:
            continue
        seen.add(id(value))
        module = str(node.target).rsplit(".", 1)[0] if "." in str(node.target) else ""
        by_module[".".join(module.split(".")[:depth])] += value.numel()
        total += value.numel()
    return {
        "inputs": graph.input_names,
        "nodes": len(graph.module.graph.nodes),
        "calls": len(calls),
        "ops_by_kind": dict(by_kind.most_common()),
        "ops_by_op": dict(by_op.most_common()),
        "parameters_total": total,
        "parameters_by_module": dict(sorted(by_module.items())),
        "history": list(graph.history),
    }


def _fetch(module: torch.nn.Module, target: str) -> Any:
    obj: Any = module
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def format_report(rep: dict[str, Any]) -> str:
    """A readable multi-line text of `report()`."""
    lines = [
        f"inputs: {', '.join(rep['inputs'])}",
        f"nodes: {rep['nodes']} ({rep['calls']} calls)",
        "ops by kind: " + ", ".join(f"{k} {v}" for k, v in rep["ops_by_kind"].items()),
        "ops by op:   " + ", ".join(f"{k} {v}" for k, v in rep["ops_by_op"].items()),
        f"parameters: {rep['parameters_total']:,}",
    ]
    width = max((len(m) for m in rep["parameters_by_module"]), default=10)
    for module, count in rep["parameters_by_module"].items():
        lines.append(f"  {module or '<top>':<{width}}  {count:>10,}")
    return "\n".join(lines)
