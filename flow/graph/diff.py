"""Node-level diff of two captures of the same model (e.g. with and without `attention_mask`).

Nodes are aligned by (op, owning module) with a sequence matcher; aligned nodes whose inputs
differ are reported as rewired. The names are export's, so the diff can be read off the drawings.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from torch import fx

from flow.graph.capture import Graph, owner
from flow.graph.ops import op_kind, op_name


@dataclass
class NodeRef:
    """A node as the diff shows it: name, op, kind and owning module."""

    name: str
    op: str
    kind: str
    module: str

    def __str__(self) -> str:
        return f"{self.name} ({self.op} in {self.module or '<top>'})"


@dataclass
class GraphDiff:
    """Nodes only in `a`, only in `b`, and aligned nodes whose inputs changed (a name, b name, a args, b args)."""

    only_a: list[NodeRef] = field(default_factory=list)
    only_b: list[NodeRef] = field(default_factory=list)
    rewired: list[tuple[str, str, str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "only_a": [vars(r) for r in self.only_a],
            "only_b": [vars(r) for r in self.only_b],
            "rewired": [{"a": a, "b": b, "a_args": x, "b_args": y} for a, b, x, y in self.rewired],
        }

    def format(self, a_label: str = "a", b_label: str = "b") -> str:
        lines = [f"only in {a_label} ({len(self.only_a)}):"] + [f"  - {r}" for r in self.only_a]
        lines += [f"only in {b_label} ({len(self.only_b)}):"] + [f"  + {r}" for r in self.only_b]
        lines += [f"rewired ({len(self.rewired)}):"] + [f"  ~ {a}: {x}  ->  {b}: {y}" for a, b, x, y in self.rewired]
        return "\n".join(lines)


def _ref(n: fx.Node) -> NodeRef:
    return NodeRef(n.name, op_name(n) if n.op != "placeholder" else f"input {n.target}", op_kind(n), owner(n))


def _sig(n: fx.Node) -> tuple[str, str, str]:
    if n.op == "placeholder":
        return (n.op, str(n.target), "")
    return (n.op, op_name(n), owner(n) if n.op != "get_attr" else str(n.target))


def _args_text(n: fx.Node, rename: dict[fx.Node, str] | None = None) -> str:
    def fmt(a: Any) -> str:
        if isinstance(a, fx.Node):
            return rename.get(a, f"<{a.name}>") if rename is not None else a.name
        if isinstance(a, (list, tuple)):
            return "[" + ", ".join(fmt(x) for x in a) + "]"
        return repr(a)

    parts = [fmt(a) for a in n.args] + [f"{k}={fmt(v)}" for k, v in n.kwargs.items()]
    return "(" + ", ".join(parts) + ")"


def diff_graphs(a: Graph, b: Graph) -> GraphDiff:
    """Align `a` and `b` node by node and report what one has and the other lacks."""
    na, nb = a.nodes, b.nodes
    matcher = difflib.SequenceMatcher(None, [_sig(n) for n in na], [_sig(n) for n in nb], autojunk=False)
    out = GraphDiff()
    pairs: dict[fx.Node, fx.Node] = {}
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs.update(zip(na[i1:i2], nb[j1:j2]))
        else:
            out.only_a += [_ref(n) for n in na[i1:i2]]
            out.only_b += [_ref(n) for n in nb[j1:j2]]
    to_b_name = {x: y.name for x, y in pairs.items()}
    for x, y in pairs.items():
        ax, by = _args_text(x, to_b_name), _args_text(y)
        if ax != by:
            out.rewired.append((x.name, y.name, _args_text(x), by))
    return out
