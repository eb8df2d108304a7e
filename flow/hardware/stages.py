"""The hardware graph: a DAG of stream stages, its exact reference and its cycle model.

The same stage objects give the fake-quant torch model (training, software accuracy), the
exact integer reference (test vectors, hardware accuracy) and the emitted SystemVerilog.
Every stage reads the streams named in ``inputs`` and drives the streams named in
``outputs``; ``INPUT`` is the design's input stream and the last stage drives its output.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from flow.formats.base import Format
from flow.hardware.components import (
    ADD_CYCLES,
    CONCAT_LOCKSTEP_CYCLES,
    ELEMENTWISE_CYCLES,
    concat_cycles,
    linear_cycles,
)
from flow.hardware.emit_cmvm import ConstantLinear
from flow.nn import Concat, QuantAdd, QuantLinear
from flow.ops.activation import ActivationStage  # noqa: F401  re-exported
from flow.ops.base import INPUT, InputStream
from flow.ops.base import Stage as OpStage
from flow.ops.broadcast import BroadcastStage  # noqa: F401  re-exported
from flow.ops.cast import CastStage, FakeCast  # noqa: F401  re-exported
from flow.ops.fifo import FifoStage  # noqa: F401  re-exported


@dataclass
class LinearStage:
    """A quantized Linear streaming IN_PAR elements in and OUT_PAR out per beat. With
    ``multiplier="lut"`` (fully parallel only) its weights are constants built from shifts and
    adds (flow.hardware.emit_cmvm), registered every ``pipeline_every`` adder levels."""

    name: str
    layer: QuantLinear
    in_par: int
    out_par: int
    inputs: tuple[str, ...] = (INPUT,)
    multiplier: str = "dsp"
    pipeline_every: int = 0
    constant: ConstantLinear | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.multiplier == "lut":
            self.constant = ConstantLinear.of(self.layer, self.pipeline_every)

    outputs = property(lambda self: (self.name,))
    in_format = property(lambda self: self.layer.config.data_in)
    out_format = property(lambda self: self.layer.config.data_out)
    in_features = property(lambda self: self.layer.in_features)
    out_features = property(lambda self: self.layer.out_features)
    module = property(lambda self: self.layer)

    @property
    def initiation_interval(self) -> int:
        if self.constant is not None:
            return 1
        return linear_cycles(self.in_features, self.out_features, self.in_par, self.out_par)[0]

    @property
    def latency(self) -> int:
        if self.constant is not None:
            return self.constant.latency
        return linear_cycles(self.in_features, self.out_features, self.in_par, self.out_par)[1]

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.layer.forward_codes(codes)

    def accept_interval(self, graph) -> int:
        return 1 if self.constant is not None else self.out_features // self.out_par


class ElementwiseStage:
    """A stage that keeps the vector and its beat width: PAR elements in and out per beat,
    one beat per cycle (so ``features / par`` cycles per vector), latency one cycle."""

    par: int
    features: int
    cycles = ELEMENTWISE_CYCLES  # (cycles per beat, latency)

    in_par = property(lambda self: self.par)
    out_par = property(lambda self: self.par)
    in_features = property(lambda self: self.features)
    out_features = property(lambda self: self.features)
    outputs = property(lambda self: (self.name,))
    beats = property(lambda self: self.features // self.par)
    initiation_interval = property(lambda self: self.cycles[0] * self.beats)
    latency = property(lambda self: self.cycles[1])

    def accept_interval(self, graph) -> int:
        return 1


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


@dataclass
class ConcatStage:
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
    module: nn.Module = field(default_factory=Concat)

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

    def accept_interval(self, graph) -> int:
        return 1


Stage = LinearStage | AddStage | ConcatStage | OpStage


class FakeQuantGraph(nn.Module):
    """The float model of a hardware graph: fake-quant input, then each stage's module in order."""

    def __init__(self, graph: HardwareGraph) -> None:
        super().__init__()
        self.graph = graph
        self.stage_modules = nn.ModuleList(stage.module if stage.module is not None else nn.Identity()
                                           for stage in graph.stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        source = self.graph.input
        values = {INPUT: source.fmt.fake_quantize(x.flatten(1), source.rounding, source.overflow)}
        for stage, module in zip(self.graph.stages, self.stage_modules):
            result = module(*(values[name] for name in stage.inputs))
            values.update((name, result) for name in stage.outputs)
        return values[self.graph.output]


@dataclass
class HardwareGraph:
    """Stages in topological order, from the input stream to the output stream."""

    stages: list[Stage]
    input: InputStream
    elided: dict[str, str] = field(default_factory=dict)  # layer -> why it needs no hardware

    @property
    def output(self) -> str:
        return self.stages[-1].outputs[0]

    @property
    def last(self) -> Stage:
        return self.stages[-1]

    @property
    def linear_stages(self) -> list[LinearStage]:
        return [s for s in self.stages if isinstance(s, LinearStage)]

    def producer(self, stream: str) -> Stage | None:
        """The stage driving ``stream`` (None for the input)."""
        return next((s for s in self.stages if stream in s.outputs), None)

    def consumers(self, stream: str) -> list[Stage]:
        return [s for s in self.stages if stream in s.inputs]

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """Float inputs (any shape, flattened per sample) to the input stream's codes."""
        return self.input.fmt.quantize(x.flatten(1), self.input.rounding, self.input.overflow)

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """The exact reference: input codes to output codes, stage by stage, in int64."""
        values = {INPUT: codes}
        for stage in self.stages:
            result = stage.forward_codes(*(values[name] for name in stage.inputs))
            values.update((name, result) for name in stage.outputs)
        return values[self.output]

    def fake_quant_model(self) -> nn.Module:
        """The torch model training and software accuracy use (shares the QuantLinear modules)."""
        return FakeQuantGraph(self)

    @property
    def initiation_interval(self) -> int:
        """Cycles between vectors in steady state: the slowest stage sets the pace."""
        return max(stage.initiation_interval for stage in self.stages)

    @property
    def latency_estimate(self) -> int:
        """Cycles from the first input beat to the first output beat (the beat-level cycle model)."""
        from flow.hardware.timing import latency

        return latency(self)
