"""gelu (component hw/rtl/gelu.sv): GELU (erf form) of each element, flow.arith.int_gelu exactly.
Lowered from ``nn.GELU()``/``F.gelu`` (its formats from the layer's quantization table: data_in,
cast in where the stream differs, and data_out) or from a ``flow.nn.QuantGELU`` (its own formats).
Elementwise: the stream's beat width, a beat a cycle, latency one cycle."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx

from flow.circuits.components import ELEMENTWISE_CYCLES, gelu_parameters, gelu_product_bits
from flow.graph.capture import owner
from flow.nn import QuantGELU
from flow.ops.base import INPUT, Build, ElementwiseStage, FloatLayer, Lowering, Op, StreamInfo, register_op
from flow.ops.cast import cast_to
from flow.ops.resources import constant_mul2dsp, mul2dsp
from flow.ops.rows import clog2, component_check, fixed_format, stream_par, vector_operand


@dataclass
class GeluStage(ElementwiseStage):
    """GELU of PAR elements a beat (flow.nn.QuantGELU's exact integer path)."""

    name: str
    module: QuantGELU
    par: int
    features: int
    inputs: tuple[str, ...] = (INPUT,)
    cycles = ELEMENTWISE_CYCLES

    in_format = property(lambda self: self.module.in_fmt)
    out_format = property(lambda self: self.module.out_fmt)

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.module.forward_codes(codes)

    def component(self, design: str = "") -> str:
        return "gelu"

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        return gelu_parameters(self.in_format, self.out_format, self.par)

    def describe(self) -> str:
        return f"gelu {self.in_format} -> {self.out_format}, half_up/saturate, {self.par} per beat"

    def report_row(self) -> dict[str, Any]:
        return {"kind": "gelu", "rounding": "half_up", "overflow": "saturate"}

    def estimate_kind(self) -> str:
        return "gelu"

    def estimate_features(self) -> dict[str, float]:
        """Per lane: the erf polynomial's width (its square and constant product) and the width of
        the product with x, which the output cast reads."""
        p = self.rtl_parameters("")
        product_bits = gelu_product_bits(self.in_format.width, p["ERF_FRAC"], p["CLIP"], p["HALF_A"])
        return {"poly_bits": float(self.par * (product_bits - self.in_format.width)),
                "product_bits": float(self.par * product_bits)}

    def dsp_count(self) -> int:
        """gelu.sv's three products a lane, as Yosys maps them (flow.ops.resources.mul2dsp): t * t
        and its product by HALF_A (W bits, the polynomial's width; HALF_A's trailing zeros a
        shift), then x by the W-bit factor (1 + erf). Matches all 8 measured gelu rows of
        flow/estimate/calibration_transformer.json exactly."""
        p = self.rtl_parameters("")
        x_bits, half_a = self.in_format.width, int(p["HALF_A"])
        poly = 2 * (clog2(int(p["CLIP"]) + 1) + 1) + clog2(-half_a + 1) + 1
        w = max(poly, int(p["ERF_FRAC"]) + 3, x_bits + 1) + 1
        lane = (mul2dsp(w, True, w, True, w) + constant_mul2dsp(w, True, half_a, w)
                + mul2dsp(x_bits, True, w, True, x_bits + w))
        return self.par * lane


@register_op("gelu")
class Gelu(Op):
    torch_ops = ("gelu",)
    lowers = "GELU (erf form; nn.GELU or flow.nn.QuantGELU)"
    has_table = True

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        if node.kwargs.get("approximate", "none") != "none":
            raise ctx.unsupported(node, f"GELU approximate={node.kwargs['approximate']!r} (flow computes the erf form: "
                                        "use nn.GELU() without approximate) in")
        features = vector_operand(node, ctx, "GELU")
        path = owner(node)
        module = ctx.model.get_submodule(path) if path else None
        attrs = {"module": copy.deepcopy(module)} if isinstance(module, QuantGELU) else {}
        ctx.add(FloatLayer("gelu", ctx.name_of(path, node), (ctx.previous(node),), attrs=attrs, features=features),
                node)

    def build(self, layer: FloatLayer, ctx: Build) -> None:
        """The module's formats (a QuantGELU), else the table's data_in and data_out; the stream
        is cast to the input format where it differs."""
        inputs, qconfig = ctx.inputs(layer), ctx.quant[layer.name]
        given = layer.attrs.get("module")
        in_fmt = fixed_format(given.in_fmt if given is not None else qconfig.data_in, layer, "data_in")
        out_fmt = fixed_format(given.out_fmt if given is not None else qconfig.data_out, layer, "data_out")
        src = ctx.streams[inputs[0]]
        par = stream_par(layer, ctx, src)
        component_check(layer, lambda: gelu_parameters(in_fmt, out_fmt, par))
        feed = cast_to(ctx, inputs[0], in_fmt, qconfig.rounding, qconfig.overflow, f"{layer.name}_cast_in")
        ctx.add(GeluStage(layer.name, QuantGELU(in_fmt, out_fmt), par, src.features, inputs=(feed,)),
                StreamInfo(out_fmt, par, src.features, qconfig.rounding))
