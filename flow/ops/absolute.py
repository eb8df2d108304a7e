"""abs (component hw/rtl/absolute.sv): |x| on the previous stage's format, saturating (the most
negative code becomes the largest); on an unsigned stream it is the identity, so no stage. It shows
that a layer kind is one op file, its component, its rtl_model entry and its tests."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from flow.circuits.components import ELEMENTWISE_CYCLES, relu_parameters
from flow.formats.base import Format
from flow.graph.capture import owner
from flow.ops.base import INPUT, Build, ElementwiseStage, FloatLayer, Lowering, Op, node_features, register_op


class FakeAbs(nn.Module):
    """The float view: |x| of an input already in the format, the most negative value saturated."""

    def __init__(self, fmt: Format) -> None:
        super().__init__()
        self.fmt = fmt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        largest = float(self.fmt.dequantize(torch.tensor([(1 << (self.fmt.width - 1)) - 1]))[0])
        return torch.clamp(x.abs(), max=largest)


@dataclass
class AbsStage(ElementwiseStage):
    """|code| on a signed format, saturating at the largest code."""

    name: str
    fmt: Format
    par: int
    features: int
    inputs: tuple[str, ...] = (INPUT,)
    cycles = ELEMENTWISE_CYCLES

    in_format = property(lambda self: self.fmt)
    out_format = property(lambda self: self.fmt)
    module = property(lambda self: FakeAbs(self.fmt))

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        largest = (1 << (self.fmt.width - 1)) - 1
        return torch.where(codes < 0, (-codes).clamp(max=largest), codes)

    def component(self, design: str = "") -> str:
        return "absolute"

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        return relu_parameters(self.fmt, self.par)  # PAR, WIDTH, SIGNED: the same as relu's

    def describe(self) -> str:
        return f"abs on {self.fmt}, saturating"

    def report_row(self) -> dict[str, Any]:
        return {"kind": "abs"}

    def estimate_kind(self) -> str:
        return "activation"  # a lane op like relu; calibrated with the activations until refitted

    def estimate_features(self) -> dict[str, float]:
        return {"abs_bits": float(self.out_par * self.out_format.width)}


@register_op("abs")
class Abs(Op):
    torch_ops = ("abs",)
    lowers = "abs (saturating)"

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        previous = ctx.previous(node)
        ctx.add(FloatLayer("abs", ctx.name_of(owner(node), node), (previous,), features=node_features(node)), node)

    def build(self, layer: FloatLayer, ctx: Build) -> None:
        inputs = ctx.inputs(layer)
        src = ctx.streams[inputs[0]]
        if not getattr(src.fmt, "signed", True) and (ctx.stages or not ctx.is_last(layer)):  # no negative code
            ctx.elide(layer, inputs[0], f"abs on unsigned {src.fmt} is the identity: no stage")
            return
        ctx.add(AbsStage(layer.name, src.fmt, src.par, src.features, inputs=inputs), src)
