"""broadcast: a fork. The graph builder puts one after each stream read by more than one input;
every beat goes to both outputs, each taking it when it is ready."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from flow.circuits.components import BROADCAST_CYCLES, broadcast_parameters
from flow.formats.base import Format
from flow.ops.base import INPUT, ElementwiseStage, Op, StreamInfo, register_op


@dataclass
class BroadcastStage(ElementwiseStage):
    """A fork: every beat goes to both outputs (each may take it in a different cycle)."""

    name: str
    fmt: Format
    par: int
    features: int
    inputs: tuple[str, ...] = (INPUT,)
    cycles = BROADCAST_CYCLES

    in_format = property(lambda self: self.fmt)
    out_format = property(lambda self: self.fmt)
    outputs = property(lambda self: (f"{self.name}.a", f"{self.name}.b"))
    module = None

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return codes

    def accept_interval(self, graph: Any) -> int:
        """It hands a beat to both branches when the slower one takes it."""
        return max(c.accept_interval(graph) for out in self.outputs for c in graph.consumers(out))

    def component(self, design: str = "") -> str:
        return "broadcast"

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        return broadcast_parameters(self.out_par * self.out_format.width)

    def describe(self) -> str:
        return f"fork of {self.fmt}, {self.par} per beat"

    def report_row(self) -> dict[str, Any]:
        return {"kind": "fork"}

    def estimate_kind(self) -> str:
        return "broadcast"


@register_op("broadcast")
class Broadcast(Op):
    role = "fork"

    def fork(self, name: str, source: str, info: StreamInfo) -> BroadcastStage:
        """A fork of ``source`` (which carries ``info``)."""
        return BroadcastStage(name, info.fmt, info.par, info.features, inputs=(source,))
