"""add: the residual add of two equal-shaped streams, taken in lockstep, aligned exactly to the
common frac and cast once to its own output format (its quantization table's data_out)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx

from flow.circuits.components import ADD_CYCLES, add_parameters
from flow.graph.capture import owner
from flow.nn import QuantAdd
from flow.ops.base import (
    INPUT,
    Build,
    ElementwiseStage,
    FloatLayer,
    Lowering,
    LoweringError,
    Op,
    StreamInfo,
    Times,
    join_par,
    join_shapes,
    lockstep_join,
    lower_join,
    register_op,
)
from flow.ops.resources import cast_lane_features


@dataclass
class AddStage(ElementwiseStage):
    """The residual add: two streams of equal shape and beat width, taken in lockstep."""

    name: str
    module: QuantAdd
    par: int
    features: int
    inputs: tuple[str, ...] = (INPUT, INPUT)
    cycles = ADD_CYCLES

    in_format = property(lambda self: self.module.a)
    out_format = property(lambda self: self.module.out)
    rounding = property(lambda self: self.module.rounding)
    overflow = property(lambda self: self.module.overflow)

    def forward_codes(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.module.forward_codes(a, b)

    def schedule(self, offered: dict[str, Times], taken: dict[str, Times],
                 handover: Callable[[str, Any], Times], vectors: int) -> None:
        lockstep_join(self, offered, taken)  # both operands in the same cycle

    def component(self, design: str = "") -> str:
        return "add"

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        m = self.module
        return add_parameters(m.a, m.b, m.out, m.rounding, m.overflow, self.par)

    def describe(self) -> str:
        return f"add {self.module.extra_repr()}, {self.par} per beat"

    def report_row(self) -> dict[str, Any]:
        return {"kind": "add", "in_format": f"{self.module.a} + {self.module.b}", "rounding": self.rounding.value,
                "overflow": self.overflow.value}

    def estimate_kind(self) -> str:
        return "add"

    def estimate_features(self) -> dict[str, float]:
        module = self.module
        return {**cast_lane_features(module.sum_format, module.out, module.rounding, module.overflow, self.par),
                "sum_bits": float(self.par * module.sum_format.width)}


@register_op("add")
class Add(Op):
    torch_ops = ("add",)
    lowers = "residual add of two equal-shaped tensors"
    has_table = True

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        operands = list(node.args[:2])
        shapes = join_shapes(node, ctx, operands)
        if node.kwargs.get("alpha", 1) != 1:
            raise ctx.unsupported(node, "add with alpha != 1 in")
        if shapes[0] != shapes[1]:
            raise LoweringError(f"residual add at node '{node.name}' (module '{owner(node) or '-'}') joins branches of "
                                f"shapes {shapes[0]} and {shapes[1]}; give both branches the same width (for example "
                                f"a Linear on the shortcut)")
        lower_join(node, ctx, "add", operands)

    def build(self, layer: FloatLayer, ctx: Build) -> None:
        inputs, a, b, q = ctx.join_operands(layer)
        par = join_par(layer, a, b)
        module = QuantAdd(a.fmt, b.fmt, q.data_out, q.rounding, q.overflow)
        ctx.add(AddStage(layer.name, module, par, a.features, inputs=inputs),
                StreamInfo(q.data_out, par, a.features, q.rounding))
