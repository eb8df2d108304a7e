"""concat: concatenation of features. Beat-serial (concat.sv) on one beat width, or lockstep
(concat_lockstep.sv) when both inputs are fully parallel: one beat of both a vector, II 1."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from flow.circuits.components import (
    CONCAT_LOCKSTEP_CYCLES,
    concat_cycles,
    concat_lockstep_parameters,
    concat_parameters,
)
from flow.formats.base import Format
from flow.nn import Concat as ConcatModule
from flow.ops.base import (
    INPUT,
    Build,
    FloatLayer,
    Lowering,
    Op,
    Stage,
    StreamInfo,
    Times,
    join_par,
    join_shapes,
    lockstep_join,
    lower_join,
    register_op,
    take,
)
from flow.ops.cast import cast_to


@dataclass
class ConcatStage(Stage):
    """Concatenation of features. Beat-serial (concat.sv): a vector's A beats of PAR elements leave
    first, then its B beats. Lockstep (concat_lockstep.sv) when both inputs are fully parallel: one
    beat of A + B elements a vector, both inputs taken in one cycle, so the design keeps II 1."""

    name: str
    fmt: Format
    a_par: int
    b_par: int
    a_features: int
    b_features: int
    inputs: tuple[str, ...] = (INPUT, INPUT)
    module: nn.Module = field(default_factory=ConcatModule)

    def __post_init__(self) -> None:
        if not self.lockstep and self.a_par != self.b_par:
            raise ValueError(f"concat '{self.name}': a beat-serial concatenation needs one beat width on both "
                             f"inputs (a: {self.a_par}, b: {self.b_par} elements per beat); give both the same "
                             f"parallelism, or make both fully parallel for a lockstep concatenation")

    @property
    def lockstep(self) -> bool:
        """Both inputs carry a whole vector in one beat: the output is one beat of both."""
        return self.a_par == self.a_features and self.b_par == self.b_features

    in_par = property(lambda self: self.a_par)
    out_par = property(lambda self: self.out_features if self.lockstep else self.a_par)
    in_features = property(lambda self: self.a_features)
    out_features = property(lambda self: self.a_features + self.b_features)
    in_format = property(lambda self: self.fmt)
    out_format = property(lambda self: self.fmt)
    outputs = property(lambda self: (self.name,))
    a_beats = property(lambda self: self.a_features // self.a_par)
    b_beats = property(lambda self: self.b_features // self.b_par)
    cycles = property(lambda self: CONCAT_LOCKSTEP_CYCLES if self.lockstep else concat_cycles(self.a_beats,
                                                                                              self.b_beats))
    initiation_interval = property(lambda self: self.cycles[0])
    latency = property(lambda self: self.cycles[1])

    def forward_codes(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b], dim=-1)

    def schedule(self, offered: dict[str, Times], taken: dict[str, Times],
                 handover: Callable[[str, Any], Times], vectors: int) -> None:
        """Lockstep: both inputs' beat in the same cycle. Beat-serial: a vector's A beats, then its B beats."""
        if self.lockstep:
            lockstep_join(self, offered, taken)
            return
        a, b = (offered[name] for name in self.inputs)
        order: list[tuple[int, int]] = []  # (side, beat index on that side)
        for vector in range(vectors):
            order += [(0, vector * self.a_beats + j) for j in range(self.a_beats)]
            order += [(1, vector * self.b_beats + j) for j in range(self.b_beats)]
        both = take([(a, b)[side][index] for side, index in order], 1)
        for side in (0, 1):
            taken[self.inputs[side]] = [t for t, (s, _) in zip(both, order) if s == side]
        offered[self.outputs[0]] = [t + self.latency for t in both]

    def component(self, design: str = "") -> str:
        return "concat_lockstep" if self.lockstep else "concat"

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        if self.lockstep:
            return concat_lockstep_parameters(self.fmt.width, self.a_features, self.b_features)
        return concat_parameters(self.out_par * self.out_format.width, self.a_beats, self.b_beats)

    def describe(self) -> str:
        return (f"concat {self.a_features}+{self.b_features} elements {self.fmt}, "
                + ("lockstep, one beat a vector" if self.lockstep else f"{self.a_par} per beat"))

    def report_row(self) -> dict[str, Any]:
        return {"kind": "concat", "lockstep": self.lockstep}  # lockstep: one beat of both inputs a vector

    def estimate_kind(self) -> str:
        return "concat"

    def estimate_features(self) -> dict[str, float]:
        return {"counter_bits": float(math.log2(self.a_beats + self.b_beats))}


@register_op("concat")
class Concat(Op):
    torch_ops = ("cat",)
    lowers = "cat along the last dimension"
    has_table = True

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        operands = node.args[0]
        rank = len(join_shapes(node, ctx, operands)[0])
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if not isinstance(dim, int) or dim % rank != rank - 1:
            raise ctx.unsupported(node, f"cat along dimension {dim} (flow concatenates features, dim=-1) in")
        lower_join(node, ctx, "concat", list(operands))

    def build(self, layer: FloatLayer, ctx: Build) -> None:
        """Lockstep when both inputs are fully parallel, else beat-serial on one beat width; both
        inputs cast to its output format (its own table's data_out, default: the default's)."""
        inputs, a, b, q = ctx.join_operands(layer)
        out, rounding, overflow = q.data_out, q.rounding, q.overflow
        lockstep = a.par == a.features and b.par == b.features
        a_par, b_par = (a.par, b.par) if lockstep else (join_par(layer, a, b, ", or make both fully parallel"),) * 2
        feeds = tuple(cast_to(ctx, name, out, rounding, overflow, f"{layer.name}_cast_{side}")
                      for name, side in zip(inputs, "ab"))
        concat = ConcatStage(layer.name, out, a_par, b_par, a.features, b.features, inputs=feeds)
        ctx.add(concat, StreamInfo(out, concat.out_par, concat.out_features, rounding))
