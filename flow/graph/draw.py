"""Draw a graph with graphviz: nodes coloured by op kind, nested clusters by owning module.

Without the `dot` binary the `.dot` file is still written and the render command is returned.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from torch import fx

from flow.graph.capture import Graph, owner
from flow.graph.ops import op_kind, op_name

COLOURS = {
    "input": "#a6d854", "output": "#a6d854", "param": "#eeeeee", "linear": "#8da0cb", "embedding": "#e78ac3",
    "norm": "#ffd92f", "attention": "#fc8d62", "activation": "#66c2a5", "dropout": "#e5c494",
    "loss": "#ff6b6b", "creation": "#b3de69", "shape": "#f2f2f2", "index": "#d9d9d9", "compare": "#ccebc5",
    "arith": "#fddaec", "meta": "#ffffff", "other": "#ffffff",
}


@dataclass
class DrawResult:
    """Where the drawing went: the `.dot` file, the `.svg` (None without dot), and a message."""

    dot_path: Path
    svg_path: Path | None
    message: str


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shape_text(node: fx.Node) -> str:
    info = node.meta.get("flow")
    if info is not None and info.shapes:
        return " ".join("x".join(map(str, s)) or "scalar" for s in info.shapes[:2])
    val = node.meta.get("val")
    shape = getattr(val, "shape", None)
    return "x".join(map(str, shape)) if shape is not None else ""


def to_dot(graph: Graph, highlight: Mapping[str, str] | None = None, show_params: bool = False,
           cluster_depth: int = 5, title: str = "") -> str:
    """The graph in DOT; `highlight` maps node names to fill colours (drawn with a thick border)."""
    highlight = dict(highlight or {})
    shown = [n for n in graph.module.graph.nodes if show_params or n.op != "get_attr"]
    ids = {n: f"n{i}" for i, n in enumerate(shown)}
    tree: dict[str, list[fx.Node]] = {}
    for n in shown:
        path = owner(n) if n.op not in ("placeholder", "output", "get_attr") else ""
        tree.setdefault(".".join(path.split(".")[:cluster_depth]) if path else "", []).append(n)

    lines = ["digraph G {", '  rankdir=TB; node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
             '  edge [color="#666666"]; compound=true;']
    if title:
        lines.append(f"  labelloc=t; label={_q(title)}; fontsize=16;")

    def emit_node(n: fx.Node, indent: str) -> None:
        kind = op_kind(n)
        label = f"{n.name}\n{op_name(n)}" if n.op not in ("placeholder", "output") else n.name
        shape = _shape_text(n)
        if shape:
            label += f"\n{shape}"
        info = n.meta.get("flow")
        if info is not None and info.params:
            label += f"\n{info.params:,} params"
        attrs = [f"label={_q(label)}", f"fillcolor={_q(highlight.get(n.name, COLOURS.get(kind, '#ffffff')))}",
                 f"tooltip={_q(owner(n) or '<top>')}"]
        if n.name in highlight:
            attrs.append("penwidth=3")
        lines.append(f"{indent}{ids[n]} [{', '.join(attrs)}];")

    # nested clusters: emit each path prefix as a subgraph containing its children
    paths = sorted(p for p in tree if p)
    prefixes = sorted({".".join(p.split(".")[:k]) for p in paths for k in range(1, len(p.split(".")) + 1)})
    children: dict[str, list[str]] = {}
    for pre in prefixes:
        parent = pre.rsplit(".", 1)[0] if "." in pre else ""
        children.setdefault(parent, []).append(pre)

    counter = [0]

    def emit_cluster(path: str, indent: str) -> None:
        counter[0] += 1
        lines.append(f"{indent}subgraph cluster_{counter[0]} {{")
        lines.append(f'{indent}  label={_q(path.rsplit(".", 1)[-1] if "." in path else path)}; style="rounded"; color="#999999"; fontsize=11;')
        for n in tree.get(path, []):
            emit_node(n, indent + "  ")
        for child in children.get(path, []):
            emit_cluster(child, indent + "  ")
        lines.append(f"{indent}}}")

    for n in tree.get("", []):
        emit_node(n, "  ")
    for top in children.get("", []):
        emit_cluster(top, "  ")
    for n in shown:
        for src in n.all_input_nodes:
            if src in ids:
                lines.append(f"  {ids[src]} -> {ids[n]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw(graph: Graph, path: str | Path, dot: str | None = "auto", timeout_s: float = 120.0, **kwargs) -> DrawResult:
    """Write `<path>.dot` and render `<path>.svg` with graphviz; `dot=None` or no binary: .dot only."""
    base = Path(path)
    base = base.with_suffix("") if base.suffix in (".svg", ".dot") else base
    base.parent.mkdir(parents=True, exist_ok=True)
    dot_path, svg_path = base.with_suffix(".dot"), base.with_suffix(".svg")
    dot_path.write_text(to_dot(graph, **kwargs))
    binary = shutil.which("dot") if dot == "auto" else dot
    if binary is None or (dot != "auto" and shutil.which(binary) is None):
        return DrawResult(dot_path, None, f"graphviz `dot` not found; wrote {dot_path}; render it with: "
                                          f"dot -Tsvg {dot_path} -o {svg_path}  (Debian: apt-get install graphviz)")
    tmp = svg_path.with_suffix(".svg.tmp")
    proc = subprocess.run([binary, "-Tsvg", str(dot_path), "-o", str(tmp)], capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"dot failed on {dot_path}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    tmp.replace(svg_path)
    return DrawResult(dot_path, svg_path, f"wrote {svg_path}")
