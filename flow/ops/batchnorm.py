"""BatchNorm1d right after a Linear: folded into that Linear's weights and bias (eval mode).
No layer kind, no stage: a lowering rule only."""
from __future__ import annotations

import copy

import torch
from torch import fx, nn

from flow.graph.capture import owner
from flow.ops.base import Lowering, Op, register_op


def fold_batchnorm(linear: nn.Linear, bn: nn.BatchNorm1d) -> nn.Linear:
    """A copy of ``linear`` computing bn(linear(x)) in eval mode."""
    folded = copy.deepcopy(linear)
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    bias = linear.bias.detach() if linear.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        folded.weight.copy_(linear.weight.detach() * scale[:, None])
        if folded.bias is None:
            folded.bias = nn.Parameter(torch.zeros(linear.out_features))
        folded.bias.copy_((bias - bn.running_mean) * scale + bn.bias.detach())
    return folded


@register_op()
class BatchNorm(Op):
    torch_ops = ("batch_norm", "_native_batch_norm_legit_no_training")
    lowers = "BatchNorm1d (folded into the preceding Linear)"

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        previous = ctx.previous(node)
        module = ctx.model.get_submodule(owner(node))
        before = ctx.by_name.get(previous)
        if not (isinstance(module, nn.BatchNorm1d) and before is not None and isinstance(before.module, nn.Linear)
                and sum(previous in layer.inputs for layer in ctx.layers) == 0):
            raise ctx.unsupported(node, "batch norm not directly after a Linear:")
        before.module = fold_batchnorm(before.module, module)
        ctx.source[node] = previous
