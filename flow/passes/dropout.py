"""Dropout passes on a captured graph: count, switch train/eval, and remove (the right way).

Besides the explicit dropout nodes, SDPA attention carries its own `dropout_p` argument (the
attention-probability dropout of BERT); the passes report and handle it separately.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx

from flow.graph.capture import Graph, owner
from flow.graph.ops import op_kind, op_name

SDPA_DROPOUT_ARG = 4  # aten.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, ...)


def dropout_nodes(graph: Graph) -> list[fx.Node]:
    """The explicit dropout nodes (aten.dropout, native_dropout, feature/alpha dropout)."""
    return [n for n in graph.module.graph.nodes if n.op == "call_function" and op_kind(n) == "dropout"]


def _sdpa_p(node: fx.Node) -> float:
    if len(node.args) > SDPA_DROPOUT_ARG:
        return float(node.args[SDPA_DROPOUT_ARG])
    return float(node.kwargs.get("dropout_p", 0.0))


def _set_sdpa_p(node: fx.Node, p: float) -> None:
    if len(node.args) > SDPA_DROPOUT_ARG:
        args = list(node.args)
        args[SDPA_DROPOUT_ARG] = p
        node.args = tuple(args)
    elif "dropout_p" in node.kwargs or p:
        node.kwargs = {**node.kwargs, "dropout_p": p}


def attention_dropouts(graph: Graph) -> list[fx.Node]:
    """SDPA nodes whose `dropout_p` is non-zero (dropout fused into attention)."""
    return [n for n in graph.module.graph.nodes if op_kind(n) == "attention" and _sdpa_p(n) > 0]


def count_dropout(graph: Graph, args: dict[str, Any] | None = None) -> tuple[Graph, dict[str, Any]]:
    """Count dropout nodes (by owning module) and SDPA nodes with dropout_p > 0; the graph is unchanged."""
    nodes = dropout_nodes(graph)
    return graph, {
        "dropout_nodes": len(nodes),
        "nodes": [{"name": n.name, "op": op_name(n), "module": owner(n), "p": float(n.args[1]),
                   "train": bool(n.args[2]) if len(n.args) > 2 else None} for n in nodes],
        "attention_dropout": len(attention_dropouts(graph)),
    }


def set_dropout_mode(graph: Graph, args: dict[str, Any]) -> tuple[Graph, dict[str, Any]]:
    """Switch every dropout node to train (`{"train": True}`) or eval; eval also zeroes SDPA dropout_p.

    An exported module refuses `.eval()`, so this is how a captured train-mode graph is evaluated.
    """
    if "train" not in args:
        raise ValueError("set_dropout_mode needs args={'train': True or False}")
    train = bool(args["train"])
    changed = 0
    for n in dropout_nodes(graph):
        if len(n.args) > 2 and bool(n.args[2]) != train:
            n.args = (n.args[0], n.args[1], train, *n.args[3:])
            changed += 1
    for n in graph.module.graph.nodes:
        if op_kind(n) != "attention":
            continue
        if not train and _sdpa_p(n) > 0:
            n.meta["flow_sdpa_dropout_p"] = _sdpa_p(n)
            _set_sdpa_p(n, 0.0)
            changed += 1
        elif train and n.meta.get("flow_sdpa_dropout_p"):
            _set_sdpa_p(n, n.meta.pop("flow_sdpa_dropout_p"))
            changed += 1
    graph.mode = "train" if train else "eval"
    graph.recompile(f"set_dropout_mode(train={train})")
    return graph, {"changed": changed, "mode": graph.mode}


def remove_dropout(graph: Graph, args: dict[str, Any] | None = None) -> tuple[Graph, dict[str, Any]]:
    """Remove dropout the right way: redirect all users to the dropout's input, then erase the node.

    args: `attention` (default True) also sets SDPA's dropout_p to 0. The outputs then equal the
    eval-mode model's (dropout is the identity in eval).
    """
    args = args or {}
    fxg = graph.module.graph
    removed: list[dict[str, str]] = []
    for n in dropout_nodes(graph):
        source = n.args[0]
        if op_name(n) == "native_dropout":  # returns (output, mask): rewire the getitem users
            for user in list(n.users):
                if user.target is operator.getitem and user.args[1] == 0:
                    user.replace_all_uses_with(source)
                    fxg.erase_node(user)
                elif user.target is operator.getitem and user.args[1] == 1:
                    with fxg.inserting_before(user):
                        keep = fxg.call_function(torch.ops.aten.ones_like.default, (source,), {"dtype": torch.bool})
                    user.replace_all_uses_with(keep)
                    fxg.erase_node(user)
        else:
            n.replace_all_uses_with(source)
        removed.append({"name": n.name, "module": owner(n)})
        fxg.erase_node(n)
    zeroed = 0
    if args.get("attention", True):
        for n in attention_dropouts(graph):
            _set_sdpa_p(n, 0.0)
            zeroed += 1
    graph.recompile(f"remove_dropout(attention={args.get('attention', True)})")
    return graph, {"removed": removed, "attention_dropout_zeroed": zeroed}
