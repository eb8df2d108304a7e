"""cast: re-expresses codes in another format. The builders put one where a layer reads a
stream in a format other than its own input's (``cast_to``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from flow.circuits.components import cast_parameters
from flow.formats.base import Format, Overflow, Rounding
from flow.ops.base import INPUT, Build, ElementwiseStage, Op, StreamInfo, register_op
from flow.ops.resources import cast_lane_features


class FakeCast(nn.Module):
    """The float view of a cast: quantize to the destination format (straight-through)."""

    def __init__(self, dst: Format, rounding: Rounding, overflow: Overflow) -> None:
        super().__init__()
        self.dst, self.rounding, self.overflow = dst, rounding, overflow

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dst.fake_quantize(x, self.rounding, self.overflow)


@dataclass
class CastStage(ElementwiseStage):
    """Re-expresses codes in the next layer's input format (inserted where formats differ)."""

    name: str
    src: Format
    dst: Format
    rounding: Rounding
    overflow: Overflow
    par: int
    features: int
    inputs: tuple[str, ...] = (INPUT,)

    in_format = property(lambda self: self.src)
    out_format = property(lambda self: self.dst)
    module = property(lambda self: FakeCast(self.dst, self.rounding, self.overflow))

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.dst.cast(codes, self.src, self.rounding, self.overflow)

    def component(self, design: str = "") -> str:
        return "fixed_cast"

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        return cast_parameters(self.src, self.dst, self.rounding, self.overflow, self.par)

    def describe(self) -> str:
        return f"cast {self.src} -> {self.dst}, {self.rounding.value}/{self.overflow.value}"

    def report_row(self) -> dict[str, Any]:
        return {"kind": "cast", "rounding": self.rounding.value, "overflow": self.overflow.value}

    def estimate_kind(self) -> str:
        return "cast"

    def estimate_features(self) -> dict[str, float]:
        return cast_lane_features(self.src, self.dst, self.rounding, self.overflow, self.par)


def cast_to(ctx: Build, name: str, dst: Format, rounding: Rounding, overflow: Overflow, label: str) -> str:
    """The stream carrying ``name``'s codes in ``dst``: ``name`` itself, or a new cast ``label``."""
    info = ctx.streams[name]
    if info.fmt == dst:
        return name
    ctx.add(CastStage(label, info.fmt, dst, rounding, overflow, info.par, info.features, inputs=(name,)),
            StreamInfo(dst, info.par, info.features, rounding))
    return label


@register_op("cast")
class Cast(Op):
    """Lowers nothing: the builders insert casts (``cast_to``)."""
