"""LOGBOOK blocks of lab 0 (the graph IR)."""
from __future__ import annotations

from pathlib import Path

from flow.labs.logbook.blocks import register
from flow.labs.logbook.fmt import load, table


@register("lab0.dropout_nodes")
def dropout_nodes(root: Path) -> str:
    r = load(root, "results/lab0/dropout.json")
    nodes, modules = r["right_way"]["removed"], r["dropout_modules"]
    if len(nodes) != len(modules):
        raise ValueError(f"results/lab0/dropout.json lists {len(nodes)} removed nodes but {len(modules)} modules; "
                         "rerun lab 0")
    return table(["node", "module"], [[f"`{n}`", f"`{m}`"] for n, m in zip(nodes, modules, strict=True)])
