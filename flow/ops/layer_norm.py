"""layer_norm (component hw/rtl/layer_norm.sv) over the stream's vector, flow.arith.int_layer_norm
exactly. Lowered from ``nn.LayerNorm(features)`` (formats from the layer's quantization table:
data_in, cast in where the stream differs; data_out; the affine weight and bias in its weight
format) or from a ``flow.nn.QuantLayerNorm`` (its own formats). A row op (flow.ops.rows): one row
at a time, folded into beats by the stream's parallelism."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from torch import fx, nn

from flow.circuits.components import layer_norm_cycles, layer_norm_parameters
from flow.graph.capture import owner
from flow.nn import QuantLayerNorm
from flow.ops.base import INPUT, Build, FloatLayer, Lowering, Op, StreamInfo, register_op
from flow.ops.cast import cast_to
from flow.ops.resources import constant_mul2dsp, mul2dsp
from flow.ops.rows import (
    RowStage,
    add_row_stage,
    clog2,
    component_check,
    fixed_format,
    row_index_dsps,
    stream_par,
    vector_operand,
)


@dataclass
class LayerNormStage(RowStage):
    """LayerNorm over rows of ``features`` elements, PAR a beat (flow.nn.QuantLayerNorm's exact path)."""

    name: str
    module: QuantLayerNorm
    par: int
    features: int
    inputs: tuple[str, ...] = (INPUT,)

    cycles = property(lambda self: layer_norm_cycles(self.features, self.par, self.rtl_parameters("")))

    def component(self, design: str = "") -> str:
        return "layer_norm"

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        return layer_norm_parameters(self.module, self.par)

    def describe(self) -> str:
        return (f"layer_norm over {self.features} elements {self.in_format} -> {self.out_format}, affine "
                f"{self.module.affine_fmt}, eps {self.module.eps:g}, {self.par} per beat, one row at a time")

    def report_row(self) -> dict[str, Any]:
        return {"kind": "layer_norm", "weight_format": str(self.module.affine_fmt), "rounding": "half_up",
                "overflow": "saturate", "eps": self.module.eps}

    def estimate_kind(self) -> str:
        return "layer_norm"

    def estimate_features(self) -> dict[str, float]:
        """The buffered row, the square root's and the reciprocal's steps, and the output lanes'
        products (centred value by reciprocal, affine weight by normalized value)."""
        p = self.rtl_parameters("")
        recip = int(p["NORM_FRAC"]) + int(p["ROOT_FRAC"]) + int(p["GUARD"]) + 1
        lane = self.in_format.width + recip + int(p["AFF_WIDTH"]) + int(p["NORM_FRAC"])
        stored = float(self.features * self.in_format.width)  # registers when several lanes write, else LUT RAM
        return {"register_row_bits": stored if self.par > 1 else 0.0, "ram_row_bits": 0.0 if self.par > 1 else stored,
                "root_bits": float(3 * int(p["ROOT_STEPS"])),
                "recip_bits": float(recip), "lane_bits": float(self.par * lane)}

    def dsp_count(self) -> int:
        """layer_norm.sv's products as Yosys maps them (flow.ops.resources.mul2dsp): shared by the
        lanes, S * S and LENGTH Q (the spread, read to the radicand's bits) and the element index
        beat * PAR; a lane's x * x (the sum of squares), LENGTH x (the centred value), its product
        by the reciprocal (read to the normalized value), the affine weight by it, and the weight's
        index (index * AFF_WIDTH; a shift for the sweep's 8-bit weights). LENGTH's trailing zeros
        are a shift. Matches all 8 measured layer_norm rows of
        flow/estimate/calibration_transformer.json exactly."""
        p = {key: int(value) for key, value in self.rtl_parameters("").items() if key not in ("WEIGHTS", "BIASES")}
        length, x_bits, aff = self.features, p["IN_WIDTH"], p["AFF_WIDTH"]
        n_bits, addr_bits = clog2(length + 1), clog2(length) if length > 1 else 1
        s_bits, sq_bits = x_bits + n_bits + 1, 2 * x_bits + n_bits
        spread = min(sq_bits + n_bits + 2, 2 * p["ROOT_STEPS"] - 2 * p["ROOT_FRAC"])  # V_W, read to RAD_W
        c_bits, q_bits = x_bits + n_bits + 2, p["NORM_FRAC"] + p["ROOT_FRAC"] + p["GUARD"] + 1
        norm_bits = p["NORM_FRAC"] + n_bits + 3
        shared = (mul2dsp(s_bits, True, s_bits, True, min(spread, 2 * s_bits))
                  + constant_mul2dsp(sq_bits, False, length, spread) + row_index_dsps(length, self.par))
        lane = (mul2dsp(x_bits, True, x_bits, True, min(sq_bits, 2 * x_bits))
                + constant_mul2dsp(x_bits, True, length, c_bits)
                + mul2dsp(c_bits, True, q_bits + 1, True, min(p["GUARD"] + norm_bits, c_bits + q_bits + 1))
                + mul2dsp(aff, True, norm_bits, True, aff + norm_bits)
                + constant_mul2dsp(addr_bits, False, aff, addr_bits + aff.bit_length()))
        return shared + self.par * lane


@register_op("layer_norm")
class LayerNorm(Op):
    torch_ops = ("layer_norm",)
    lowers = "LayerNorm over the last dimension (nn.LayerNorm or flow.nn.QuantLayerNorm)"
    has_table = True

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        shape = tuple(node.args[1]) if len(node.args) > 1 else ()
        features = vector_operand(node, ctx, "LayerNorm", tuple(range(-len(shape), 0)) or (-1,))
        path = owner(node)
        module = ctx.model.get_submodule(path) if path else None
        if not isinstance(module, nn.LayerNorm | QuantLayerNorm):
            raise ctx.unsupported(node, "layer_norm outside an nn.LayerNorm or flow.nn.QuantLayerNorm module")
        ctx.add(FloatLayer("layer_norm", ctx.name_of(path, node), (ctx.previous(node),), copy.deepcopy(module),
                           features=features), node)

    def build(self, layer: FloatLayer, ctx: Build) -> None:
        """The module's formats (a QuantLayerNorm), else the table's data_in, data_out and weight
        (the affine codes') formats."""
        inputs, qconfig = ctx.inputs(layer), ctx.quant[layer.name]
        if isinstance(layer.module, QuantLayerNorm):
            norm = layer.module
        else:
            norm = QuantLayerNorm.from_float(layer.module, fixed_format(qconfig.data_in, layer, "data_in"),
                                             fixed_format(qconfig.data_out, layer, "data_out"),
                                             fixed_format(qconfig.weight, layer, "weight"))
        for fmt, role in ((norm.in_fmt, "data_in"), (norm.out_fmt, "data_out"), (norm.affine_fmt, "weight")):
            fixed_format(fmt, layer, role)
        src = ctx.streams[inputs[0]]
        par = stream_par(layer, ctx, src)
        component_check(layer, lambda: layer_norm_parameters(norm, par))
        feed = cast_to(ctx, inputs[0], norm.in_fmt, qconfig.rounding, qconfig.overflow, f"{layer.name}_cast_in")
        add_row_stage(ctx, layer, LayerNormStage(layer.name, norm, par, norm.features, inputs=(feed,)),
                      StreamInfo(norm.out_fmt, par, norm.features, qconfig.rounding))
