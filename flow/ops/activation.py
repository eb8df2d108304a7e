"""relu and leaky_relu (slope 2**-shift, rounded by the reading layer's mode) on the previous
stage's format; on an unsigned stream no code is negative, so the layer is the identity."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from flow.circuits.components import leaky_relu_parameters, relu_parameters
from flow.formats.base import Format, Rounding
from flow.graph.capture import owner
from flow.graph.ops import op_name
from flow.nn import QuantLeakyReLU, QuantReLU
from flow.ops.base import INPUT, Build, ElementwiseStage, FloatLayer, Lowering, Op, node_features, register_op


@dataclass
class ActivationStage(ElementwiseStage):
    """ReLU or leaky ReLU (slope 2**-shift) on the previous stage's format."""

    name: str
    kind: str
    fmt: Format
    par: int
    features: int
    shift: int = 0
    rounding: Rounding = Rounding.HALF_UP
    inputs: tuple[str, ...] = (INPUT,)
    module: nn.Module = field(init=False)

    def __post_init__(self) -> None:
        self.module = (QuantLeakyReLU(self.fmt, self.shift, self.rounding) if self.leaky else QuantReLU())

    leaky = property(lambda self: self.kind == "leaky_relu")
    in_format = property(lambda self: self.fmt)
    out_format = property(lambda self: self.fmt)

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.module.forward_codes(codes)

    def component(self, design: str = "") -> str:
        return self.kind

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        if self.leaky:
            return leaky_relu_parameters(self.fmt, self.shift, self.rounding, self.par)
        return relu_parameters(self.fmt, self.par)

    def describe(self) -> str:
        return f"{self.kind} on {self.fmt}" + (f", slope 2**-{self.shift}" if self.leaky else "")

    def report_row(self) -> dict[str, Any]:
        return {"kind": self.kind, **({"slope": f"2**-{self.shift}"} if self.leaky else {})}

    def estimate_kind(self) -> str:
        return "activation"

    def estimate_features(self) -> dict[str, float]:
        return {"leaky_bits": float(self.out_par * self.out_format.width)} if self.leaky else {}


@register_op("relu", "leaky_relu")
class Activation(Op):
    torch_ops = ("relu", "leaky_relu")
    lowers = "ReLU, LeakyReLU (slope 2**-k)"

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        previous = ctx.previous(node)
        kind = op_name(node)  # the kinds are the torch op names
        shift = _slope_shift(node, ctx) if kind == "leaky_relu" else 0
        ctx.add(FloatLayer(kind, ctx.name_of(owner(node), node), (previous,), attrs={"shift": shift},
                           features=node_features(node)), node)

    def build(self, layer: FloatLayer, ctx: Build) -> None:
        inputs = ctx.inputs(layer)
        src = ctx.streams[inputs[0]]
        if not getattr(src.fmt, "signed", True) and (ctx.stages or not ctx.is_last(layer)):  # no negative code
            ctx.elide(layer, inputs[0], f"{layer.kind} on unsigned {src.fmt} is the identity: no stage")
            return
        ctx.add(ActivationStage(layer.name, layer.kind, src.fmt, src.par, src.features, layer.attrs.get("shift", 0), src.rounding,
                                inputs=inputs), src)


def _slope_shift(node: fx.Node, ctx: Lowering) -> int:
    slope = float(node.args[1]) if len(node.args) > 1 else 0.01
    shift = -math.log2(slope) if slope > 0 else float("nan")
    if not (shift == shift and shift == int(shift) and shift >= 1):
        raise ctx.unsupported(node, f"leaky ReLU slope {slope} is not 2**-k (k >= 1) in")
    return int(shift)
