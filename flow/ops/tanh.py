"""tanh (component hw/rtl/tanh.sv): tanh of each element, flow.nn.QuantTanh exactly (2 s - 1 with
s = softmax(x, -x)_0 by flow's integer softmax kernel: BERT's pooler). Lowered from ``torch.tanh``/
``nn.Tanh()`` (its formats from the layer's quantization table: data_in, cast in where the stream
differs, and data_out, of which it takes the frac: the output is signed with two integer bits, so
both -1.0 and 1.0 are reachable) or from a ``flow.nn.QuantTanh`` (its own formats). Elementwise:
the stream's beat width, a beat a cycle, latency the divider's pipeline (tanh_cycles)."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx

from flow.circuits.components import tanh_cycles, tanh_parameters
from flow.graph.capture import owner
from flow.nn import QuantTanh
from flow.ops.base import INPUT, Build, ElementwiseStage, FloatLayer, Lowering, Op, StreamInfo, register_op
from flow.ops.cast import cast_to
from flow.ops.resources import constant_mul2dsp, mul2dsp
from flow.ops.rows import clog2, component_check, fixed_format, stream_par, vector_operand


@dataclass
class TanhStage(ElementwiseStage):
    """tanh of PAR elements a beat (flow.nn.QuantTanh's exact integer path)."""

    name: str
    module: QuantTanh
    par: int
    features: int
    inputs: tuple[str, ...] = (INPUT,)

    in_format = property(lambda self: self.module.in_fmt)
    out_format = property(lambda self: self.module.out_fmt)

    @property
    def cycles(self) -> tuple[int, int]:  # type: ignore[override]
        return tanh_cycles(self.rtl_parameters(""))

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.module.forward_codes(codes)

    def component(self, design: str = "") -> str:
        return "tanh"

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        return tanh_parameters(self.in_format, self.module.out_frac, self.par)

    def describe(self) -> str:
        return f"tanh {self.in_format} -> {self.out_format} (2 softmax(x, -x)_0 - 1), {self.par} per beat"

    def report_row(self) -> dict[str, Any]:
        return {"kind": "tanh", "rounding": "half_up", "overflow": "none"}

    def estimate_kind(self) -> str:
        return "tanh"  # fitted by benches/calibrate_transformer_ops.py --kinds tanh

    def estimate_features(self) -> dict[str, float]:
        """Per lane: the square of the input width (the exp lane's logic around its products, fitted
        better than its product widths) and the divider pipeline's registers (divisor, numerator,
        remainder and the quotient so far a stage, OUT_FRAC + GUARD + 1 stages)."""
        p = {key: int(value) for key, value in self.rtl_parameters("").items()}
        steps = p["OUT_FRAC"] + p["GUARD"] + 1  # the quotient bits it computes (the first EXP_FRAC are 0)
        stage_bits = 2 * (p["EXP_FRAC"] + 3) + p["EXP_FRAC"] + 2
        return {"square_bits": float(self.par * p["IN_WIDTH"] ** 2),
                "pipeline_bits": float(self.par * (steps * stage_bits + steps * (steps + 1) // 2))}

    def dsp_count(self) -> int:
        """tanh.sv's products a lane, as softmax.sv's exp lane (n by MAGIC, z by LN2, EXP_A t by t)
        plus the output product num q, through flow.ops.resources.mul2dsp; the divider has none.
        Matches all 8 measured tanh rows of flow/estimate/calibration_transformer.json exactly."""
        p = {key: int(value) for key, value in self.rtl_parameters("").items()}
        n_bits = p["IN_WIDTH"] + 1 + p["WORK_SHIFT"]
        z_bits = n_bits + clog2(p["MAGIC"] + 1)
        a_bits, b_bits = clog2(p["EXP_A"] + 1), clog2(p["EXP_B"] + 1)
        poly_bits = max(a_bits + 2 * b_bits, clog2(p["EXP_C"] + 1) + p["C_SHIFT"]) + 1
        shift_a = (p["EXP_A"] & -p["EXP_A"]).bit_length() - 1
        odd_a = (p["EXP_A"] >> shift_a).bit_length()
        exp_bits, q_bits = p["EXP_FRAC"] + 2, p["OUT_FRAC"] + p["GUARD"] + 1
        lane = (constant_mul2dsp(p["IN_WIDTH"] + 1, False, p["MAGIC"], z_bits - p["WORK_SHIFT"])
                + constant_mul2dsp(min(n_bits, z_bits - p["MAGIC_SHIFT"]), False, p["LN2"], b_bits)
                + constant_mul2dsp(b_bits, False, p["EXP_A"], poly_bits)
                + (mul2dsp(odd_a + b_bits, False, b_bits, False, min(poly_bits - shift_a, odd_a + 2 * b_bits))
                   if odd_a > 1 else 0)
                + mul2dsp(exp_bits, False, q_bits, False, min(p["EXP_FRAC"] + p["GUARD"] + p["OUT_FRAC"] + 2,
                                                                exp_bits + q_bits)))
        return self.par * lane


@register_op("tanh")
class Tanh(Op):
    torch_ops = ("tanh",)
    lowers = "tanh (nn.Tanh, torch.tanh or flow.nn.QuantTanh)"
    has_table = True

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        features = vector_operand(node, ctx, "tanh")
        path = owner(node)
        module = ctx.model.get_submodule(path) if path else None
        attrs = {"module": copy.deepcopy(module)} if isinstance(module, QuantTanh) else {}
        ctx.add(FloatLayer("tanh", ctx.name_of(path, node), (ctx.previous(node),), attrs=attrs, features=features),
                node)

    def build(self, layer: FloatLayer, ctx: Build) -> None:
        """The module's formats (a QuantTanh), else the table's data_in and data_out's frac; the
        stream is cast to the input format where it differs."""
        inputs, qconfig = ctx.inputs(layer), ctx.quant[layer.name]
        given = layer.attrs.get("module")
        in_fmt = fixed_format(given.in_fmt if given is not None else qconfig.data_in, layer, "data_in")
        out_frac = given.out_frac if given is not None else fixed_format(qconfig.data_out, layer, "data_out").frac
        src = ctx.streams[inputs[0]]
        par = stream_par(layer, ctx, src)
        component_check(layer, lambda: tanh_parameters(in_fmt, out_frac, par),
                        f" (quantization.{layer.name}.data_in_frac_width / data_out_frac_width)")
        feed = cast_to(ctx, inputs[0], in_fmt, qconfig.rounding, qconfig.overflow, f"{layer.name}_cast_in")
        module = QuantTanh(in_fmt, out_frac)
        ctx.add(TanhStage(layer.name, module, par, src.features, inputs=(feed,)),
                StreamInfo(module.out_fmt, par, src.features, qconfig.rounding))
