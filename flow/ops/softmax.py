"""softmax (component hw/rtl/softmax.sv) over the stream's vector, flow.arith.int_softmax exactly:
unsigned codes at an output frac with one integer bit (1.0 is reachable). Lowered from
``torch.softmax``/``F.softmax``/``nn.Softmax`` over the last dimension (input format: the layer's
data_in, cast in where the stream differs; output frac: its data_out_frac_width) or from a
``flow.nn.QuantSoftmax`` (its own formats). A row op (flow.ops.rows): one row at a time, folded
into beats by the stream's parallelism."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from torch import fx

from flow.circuits.components import softmax_cycles, softmax_parameters, softmax_product_bits
from flow.formats.base import Overflow, Rounding
from flow.formats.fixed import FixedFormat
from flow.graph.capture import owner
from flow.nn import QuantSoftmax
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
class SoftmaxStage(RowStage):
    """Softmax over rows of ``features`` elements, PAR a beat (flow.nn.QuantSoftmax's exact path)."""

    name: str
    module: QuantSoftmax
    par: int
    features: int
    inputs: tuple[str, ...] = (INPUT,)

    cycles = property(lambda self: softmax_cycles(self.features, self.par, self.rtl_parameters("")))

    def component(self, design: str = "") -> str:
        return "softmax"

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        return softmax_parameters(self.in_format, self.module.out_frac, self.features, self.par)

    def describe(self) -> str:
        return (f"softmax over {self.features} elements {self.in_format} -> {self.out_format}, {self.par} per beat, "
                f"one row at a time")

    def report_row(self) -> dict[str, Any]:
        p = self.rtl_parameters("")
        return {"kind": "softmax", "rounding": "half_up", "exp_frac": p["EXP_FRAC"], "guard_bits": p["GUARD"]}

    def estimate_kind(self) -> str:
        return "softmax"

    def estimate_features(self) -> dict[str, float]:
        """The buffered row and its exps (registers when several lanes write them a cycle, else LUT
        RAM), the exp lanes (their widest product), the reciprocal."""
        p = self.rtl_parameters("")
        stored = float(self.features * (self.in_format.width + p["EXP_FRAC"] + 2))
        return {"register_row_bits": stored if self.par > 1 else 0.0, "ram_row_bits": 0.0 if self.par > 1 else stored,
                "lane_bits": float(self.par * softmax_product_bits(p)),
                "recip_bits": float(p["EXP_FRAC"] + p["OUT_FRAC"] + p["GUARD"] + 1)}

    def dsp_count(self) -> int:
        """softmax.sv's products as Yosys maps them (flow.ops.resources.mul2dsp), each lane's four
        (n by MAGIC, z by LN2, EXP_A t by t: constants narrowed to their odd part, the product to
        the bits read) and its output product e q, plus the shared element index beat * PAR; the
        reciprocal is a restoring divider (no multiplier). Matches all 8 measured softmax rows of
        flow/estimate/calibration_transformer.json exactly."""
        p = {key: int(value) for key, value in self.rtl_parameters("").items()}
        n_bits = p["IN_WIDTH"] + 1 + p["WORK_SHIFT"]  # n = (max - x) << WORK_SHIFT
        z_bits = n_bits + clog2(p["MAGIC"] + 1)
        a_bits, b_bits = clog2(p["EXP_A"] + 1), clog2(p["EXP_B"] + 1)
        poly_bits = max(a_bits + 2 * b_bits, clog2(p["EXP_C"] + 1) + p["C_SHIFT"]) + 1
        shift_a = (p["EXP_A"] & -p["EXP_A"]).bit_length() - 1  # EXP_A's trailing zeros
        odd_a = (p["EXP_A"] >> shift_a).bit_length()
        exp_bits, q_bits = p["EXP_FRAC"] + 2, p["EXP_FRAC"] + p["OUT_FRAC"] + p["GUARD"] + 1
        lane = (constant_mul2dsp(p["IN_WIDTH"] + 1, False, p["MAGIC"], z_bits - p["WORK_SHIFT"])
                + constant_mul2dsp(min(n_bits, z_bits - p["MAGIC_SHIFT"]), False, p["LN2"], b_bits)
                + constant_mul2dsp(b_bits, False, p["EXP_A"], poly_bits)
                + (mul2dsp(odd_a + b_bits, False, b_bits, False, min(poly_bits - shift_a, odd_a + 2 * b_bits))
                   if odd_a > 1 else 0)
                + mul2dsp(exp_bits, False, q_bits, False, min(p["EXP_FRAC"] + p["GUARD"] + p["OUT_FRAC"] + 1,
                                                                exp_bits + q_bits)))
        return self.par * lane + row_index_dsps(self.features, self.par)


def softmax_input(layer: FloatLayer, ctx: Build) -> tuple[FixedFormat, Rounding, Overflow]:
    """A softmax layer's input format (its QuantSoftmax's, else its table's data_in) and the rounding
    and overflow of the cast into it (a key_mask before it casts the scores to it)."""
    qconfig, given = ctx.quant[layer.name], layer.attrs.get("module")
    fmt = fixed_format(given.in_fmt if given is not None else qconfig.data_in, layer, "data_in")
    return fmt, qconfig.rounding, qconfig.overflow


@register_op("softmax")
class Softmax(Op):
    torch_ops = ("softmax", "_softmax")
    lowers = "softmax over the last dimension (or flow.nn.QuantSoftmax)"
    has_table = True

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", -1)
        features = vector_operand(node, ctx, "softmax", (int(dim),))
        path = owner(node)
        module = ctx.model.get_submodule(path) if path else None
        attrs = {"module": copy.deepcopy(module)} if isinstance(module, QuantSoftmax) else {}
        ctx.add(FloatLayer("softmax", ctx.name_of(path, node), (ctx.previous(node),), attrs=attrs,
                           features=features), node)

    def build(self, layer: FloatLayer, ctx: Build) -> None:
        """The module's formats (a QuantSoftmax), else the table's data_in and data_out's frac."""
        inputs, qconfig = ctx.inputs(layer), ctx.quant[layer.name]
        given = layer.attrs.get("module")
        in_fmt = softmax_input(layer, ctx)[0]
        out_frac = given.out_frac if given is not None else fixed_format(qconfig.data_out, layer, "data_out",
                                                                         signed=False).frac
        src = ctx.streams[inputs[0]]
        par = stream_par(layer, ctx, src)
        component_check(layer, lambda: softmax_parameters(in_fmt, out_frac, src.features, par),
                        f" (quantization.{layer.name}.data_in_frac_width / data_out_frac_width)")
        feed = cast_to(ctx, inputs[0], in_fmt, qconfig.rounding, qconfig.overflow, f"{layer.name}_cast_in")
        module = QuantSoftmax(in_fmt, out_frac)
        add_row_stage(ctx, layer, SoftmaxStage(layer.name, module, par, src.features, inputs=(feed,)),
                      StreamInfo(module.out_fmt, par, src.features, qconfig.rounding))
