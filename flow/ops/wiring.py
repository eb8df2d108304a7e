"""Wiring: nodes that move no number (reshapes, eval-mode dropout) map to the layer they pass on.
No layer kind, no stage: a lowering rule only."""
from __future__ import annotations

from torch import fx

from flow.graph.ops import op_name
from flow.ops.base import INPUT, Lowering, Op, register_op

DROPOUT_OPS = ("dropout", "native_dropout", "feature_dropout")
RESHAPE_OPS = ("view", "reshape", "_unsafe_view", "flatten")  # must leave a vector per sample
WIRING_OPS = {"flatten", "view", "reshape", "_unsafe_view", "contiguous", "clone", "alias"}


@register_op()
class Wiring(Op):
    torch_ops = (*DROPOUT_OPS, *sorted(WIRING_OPS))
    lowers = "Flatten/view/reshape and eval-mode Dropout/Identity (wiring)"

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        previous = ctx.previous(node)
        name = op_name(node)
        if name in DROPOUT_OPS:
            if len(node.args) > 2 and node.args[2]:  # dropout(input, p, train): train-mode dropout is random
                raise ctx.unsupported(node, "train-mode dropout (capture the model in eval mode)")
        elif name in RESHAPE_OPS and node.meta.get("val") is not None and node.meta["val"].dim() != 2:
            if not ctx.token_shape(tuple(node.meta["val"].shape)):
                raise ctx.unsupported(node, "reshape to a non-vector shape")
        elif name in RESHAPE_OPS and ctx.sequence > 1:  # a (batch, sequence, features) tensor flattened
            if previous != INPUT or ctx.layers:
                raise ctx.unsupported(node, f"a reshape flattening the sequence of {ctx.sequence} tokens (flow streams "
                                            f"a sequence token by token; flatten the model's input instead)")
            ctx.sequence = 1  # the model flattens its input: one vector a sample
        ctx.source[node] = previous
