"""concat: concatenation of features. Beat-serial (concat.sv) on one beat width, or lockstep
(concat_lockstep.sv) when both inputs are fully parallel: one beat of both a vector, II 1."""
from __future__ import annotations

from torch import fx

from flow.ops.base import Lowering, Op, join_shapes, lower_join, register_op


@register_op("concat")
class Concat(Op):
    torch_ops = ("cat",)
    lowers = "cat along the last dimension"
    has_table = True

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        operands = node.args[0]
        join_shapes(node, ctx, operands)
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if dim not in (-1, 1):
            raise ctx.unsupported(node, f"cat along dimension {dim} (flow concatenates features, dim=-1) in")
        lower_join(node, ctx, "concat", list(operands))
