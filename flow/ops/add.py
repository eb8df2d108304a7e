"""add: the residual add of two equal-shaped streams, taken in lockstep, aligned exactly to the
common frac and cast once to its own output format (its quantization table's data_out)."""
from __future__ import annotations

from torch import fx

from flow.graph.capture import owner
from flow.ops.base import Lowering, LoweringError, Op, join_shapes, lower_join, register_op


@register_op("add")
class Add(Op):
    torch_ops = ("add",)
    lowers = "residual add of two equal-shaped tensors"
    has_table = True

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        operands = list(node.args[:2])
        shapes = join_shapes(node, ctx, operands)
        if node.kwargs.get("alpha", 1) != 1:
            raise ctx.unsupported(node, "add with alpha != 1 in")
        if shapes[0] != shapes[1]:
            raise LoweringError(f"residual add at node '{node.name}' (module '{owner(node) or '-'}') joins branches of "
                                f"shapes {shapes[0]} and {shapes[1]}; give both branches the same width (for example "
                                f"a Linear on the shortcut)")
        lower_join(node, ctx, "add", operands)
