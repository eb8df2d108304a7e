"""linear: a quantized Linear (BatchNorm1d folded in) streaming IN_PAR elements in and OUT_PAR out
per beat; with ``multiplier="lut"`` its constant weights are built from shifts and adds."""
from __future__ import annotations

import copy

from torch import fx, nn

from flow.graph.capture import owner
from flow.ops.base import INPUT, Build, FloatLayer, InputStream, Lowering, Op, parallelism, register_op


@register_op("linear")
class Linear(Op):
    torch_ops = ("linear",)
    lowers = "Linear"
    has_table = True
    sets_input = True

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        previous, path = ctx.previous(node), owner(node)
        module = ctx.model.get_submodule(path)
        if not isinstance(module, nn.Linear):
            raise ctx.unsupported(node, "linear outside an nn.Linear module")
        ctx.add(FloatLayer("linear", ctx.name_of(path, node), (previous,), copy.deepcopy(module),
                           features=module.out_features), node)

    def input_stream(self, layer: FloatLayer, ctx: Build) -> InputStream:
        """The design's input takes the first Linear's input format, and its in_par when it reads the input."""
        qconfig = ctx.quant(layer)
        value = ctx.table(layer)["in_par"] if layer.inputs == (INPUT,) else "full"
        features = ctx.layers.input_features or layer.linear.in_features
        par = parallelism("full" if value == "auto" else value, features, f"parallelism.{layer.name}.in_par")
        return InputStream(qconfig.data_in, par, features, qconfig.rounding, qconfig.overflow)
