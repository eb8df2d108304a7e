"""Lower a captured float graph to a DAG of hardware layers.

Each call_function node goes to the op of flow.ops registered for its torch op name: today
Linear, ReLU, LeakyReLU with slope 2**-k, BatchNorm1d (folded into the Linear before it), the
residual add of two equal-shaped tensors, concatenation of features, abs, GELU, and LayerNorm and
softmax over the stream's vector, matmul, multi-head attention (every node reading a per-head
tensor goes to the op with role "heads", flow.ops.heads), and as wiring
Flatten/view/reshape and eval-mode Dropout (nn.Identity leaves no node). A tensor may feed
several layers. Any other op is an error that names the node, its op, its module and the
supported list: nothing is mapped silently.
"""
from __future__ import annotations

from torch import nn

from flow.graph import Graph
from flow.graph.ops import op_kind, op_name
from flow.ops import (
    INPUT,
    FloatGraph,
    FloatLayer,
    Lowering,
    LoweringError,
    lowering_rule,
    op_for,
    op_with_role,
    supported,
)
from flow.ops.batchnorm import fold_batchnorm

__all__ = ["INPUT", "FloatGraph", "FloatLayer", "LoweringError", "fold_batchnorm", "lower"]


def lower(graph: Graph, model: nn.Module) -> FloatGraph:
    """The layers the graph computes, in topological order, ending with the model's output.

    Wiring (reshapes, eval-mode dropout) maps a node to the layer it passes on; a tensor with
    several consumers feeds each of them (the hardware graph forks it)."""
    ctx = Lowering(model)
    heads = op_with_role("heads")  # the rule for per-head tensors (multi-head attention)
    input_features = 0
    for node in graph.nodes:
        if node.op in ("get_attr",) or op_kind(node) == "meta":
            continue
        if node.op == "output":
            result = node.args[0]
            result = result[0] if isinstance(result, tuple | list) and len(result) == 1 else result
            last = ctx.feeding(node, result)
            if last == INPUT or last != ctx.layers[-1].name:
                raise LoweringError(f"the model output must be computed by its last layer; flow lowers {supported()}")
            continue
        if node.op == "placeholder":
            if ctx.source:
                value = node.meta.get("val")
                if ctx.sequence > 1 and value is not None and tuple(value.shape[1:]) == (ctx.sequence,):
                    raise LoweringError(f"input '{node.name}' looks like an attention key mask (batch, sequence); "
                                        "flow lowers single-input models: its hardware (hw/rtl/key_mask.sv) is built "
                                        "but not lowered yet, so compile the model without the mask")
                raise LoweringError(f"input '{node.name}' is a second model input; flow lowers single-input models")
            ctx.source[node] = INPUT
            value = node.meta.get("val")
            input_features = int(value[0].numel()) if value is not None and value.dim() >= 1 else 0
            if value is not None and value.dim() == 3 and value.shape[1] > 1:  # (batch, sequence, features)
                ctx.sequence = int(value.shape[1])  # a sequence design, unless a reshape flattens the input
            continue
        rule = lowering_rule(op_name(node)) if node.op == "call_function" else None
        rule = heads if heads.claims(node, ctx) else rule
        if rule is None:
            raise ctx.unsupported(node)
        rule.lower(node, ctx)
    if not any(op_for(layer.kind).sets_input for layer in ctx.layers):
        raise LoweringError(f"the model has no Linear layer; flow lowers {supported()}")
    for layer in ctx.layers[:-1]:
        if not any(layer.name in other.inputs for other in ctx.layers):
            raise LoweringError(f"layer '{layer.name}' feeds nothing; flow lowers models with one output")
    return FloatGraph(ctx.layers, input_features // ctx.sequence, ctx.sequence)
