"""fifo: a FIFO of ``depth`` beats that lets a join's short branch wait for its long one. The
graph builder puts one before each join input that would wait (depth from the cycle model)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from flow.circuits.components import fifo_cycles, fifo_parameters
from flow.formats.base import Format
from flow.ops.base import INPUT, ElementwiseStage, Op, StreamInfo, register_op


@dataclass
class FifoStage(ElementwiseStage):
    """A FIFO of ``depth`` beats that lets a short branch wait for a long one (wiring for numbers)."""

    name: str
    fmt: Format
    par: int
    features: int
    depth: int
    inputs: tuple[str, ...] = (INPUT,)

    in_format = property(lambda self: self.fmt)
    out_format = property(lambda self: self.fmt)
    cycles = property(lambda self: fifo_cycles(self.depth))
    module = None

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return codes

    def accept_interval(self, graph: Any) -> int:
        return self.cycles[0]

    def component(self, design: str = "") -> str:
        return "fifo"

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        return fifo_parameters(self.out_par * self.out_format.width, self.depth)

    def describe(self) -> str:
        return f"fifo of {self.depth} beats ({self.fmt}, {self.par} per beat)"

    def report_row(self) -> dict[str, Any]:
        return {"kind": "fifo", "depth": self.depth}

    def estimate_kind(self) -> str:
        return "fifo"

    def estimate_features(self) -> dict[str, float]:
        in_bits = self.in_par * self.in_format.width
        return {"fifo_bits": float(self.depth * in_bits), "fifo_lutram": float(in_bits * math.ceil(self.depth / 32)),
                "fifo_pointer_bits": float(math.ceil(math.log2(self.depth + 1)))}


@register_op("fifo")
class Fifo(Op):
    role = "buffer"

    def buffer(self, name: str, stream: str, info: StreamInfo, depth: int) -> FifoStage:
        """A FIFO of ``depth`` beats on ``stream`` (which carries ``info``)."""
        return FifoStage(name, info.fmt, info.par, info.features, depth, inputs=(stream,))
