"""The hardware graph: a DAG of stream stages, its exact reference and its cycle model.

The same stage objects give the fake-quant torch model (training, software accuracy), the
exact integer reference (test vectors, hardware accuracy) and the emitted SystemVerilog.
Every stage reads the streams named in ``inputs`` and drives the streams named in
``outputs``; ``INPUT`` is the design's input stream and the last stage drives its output.
The stage classes live in their kinds' op files (flow.ops) and are re-exported here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from flow.compiler.timing import latency, sequence_interval, stream_tokens
from flow.ops.activation import ActivationStage
from flow.ops.add import AddStage
from flow.ops.base import INPUT, InputStream, Stage
from flow.ops.broadcast import BroadcastStage
from flow.ops.cast import CastStage, FakeCast
from flow.ops.concat import ConcatStage
from flow.ops.fifo import FifoStage
from flow.ops.linear import LinearStage, linear_stages

__all__ = ["ActivationStage", "AddStage", "BroadcastStage", "CastStage", "ConcatStage", "FakeCast", "FakeQuantGraph",
           "FifoStage", "HardwareGraph", "InputStream", "LinearStage", "Stage"]


class FakeQuantGraph(nn.Module):
    """The float model of a hardware graph: fake-quant input, then each stage's module in order."""

    def __init__(self, graph: HardwareGraph) -> None:
        super().__init__()
        self.graph = graph
        self.stage_modules = nn.ModuleList(stage.module if stage.module is not None else nn.Identity()
                                           for stage in graph.stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        source, graph = self.graph.input, self.graph
        values = {INPUT: graph.tokens(source.fmt.fake_quantize(x.flatten(1), source.rounding, source.overflow))}
        for stage, module in zip(graph.stages, self.stage_modules):
            result = module(*(values[name] for name in stage.inputs))
            values.update((name, result) for name in stage.outputs)
        return graph.samples(values[graph.output])


@dataclass
class HardwareGraph:
    """Stages in topological order, from the input stream to the output stream."""

    stages: list[Stage]
    input: InputStream
    elided: dict[str, str] = field(default_factory=dict)  # layer -> why it needs no hardware
    sequence: int = 1  # tokens a sample: a sequence design streams a sample's tokens one after another
    _intervals: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # stages -> (II, widest)

    def _sequence_interval(self) -> tuple[int, int]:
        key = tuple((stage.name, stage.inputs, getattr(stage, "depth", None)) for stage in self.stages)
        if key not in self._intervals:
            self._intervals[key] = sequence_interval(self)
        return self._intervals[key]

    def tokens(self, samples: torch.Tensor) -> torch.Tensor:
        """A sample a row (samples, sequence * features) to a token a row (samples * sequence, features):
        what every stage's ``forward_codes`` and module take (a matmul regroups the tokens by sequence)."""
        if self.sequence == 1:
            return samples
        flat = samples.flatten(1)
        return flat.reshape(-1, flat.shape[-1] // self.sequence)

    def samples(self, tokens: torch.Tensor) -> torch.Tensor:
        """A token a row of the output back to a sample a row, its tokens one after another."""
        return tokens if self.sequence == 1 else tokens.reshape(-1, self.out_sequence * tokens.shape[-1])

    @property
    def out_sequence(self) -> int:
        """Tokens a sample on the output (the sequence, or 1 after a select_token)."""
        return self.sequence if self.sequence == 1 else stream_tokens(self)[self.output]

    @property
    def output(self) -> str:
        return self.stages[-1].outputs[0]

    @property
    def last(self) -> Stage:
        return self.stages[-1]

    @property
    def linear_stages(self) -> list[LinearStage]:
        return linear_stages(self.stages)

    def producer(self, stream: str) -> Stage | None:
        """The stage driving ``stream`` (None for the input)."""
        return next((s for s in self.stages if stream in s.outputs), None)

    def consumers(self, stream: str) -> list[Stage]:
        return [s for s in self.stages if stream in s.inputs]

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """Float inputs (any shape, flattened per sample: a sequence design's (samples, sequence,
        features) become (samples, sequence * features), token after token) to the input stream's codes."""
        return self.input.fmt.quantize(x.flatten(1), self.input.rounding, self.input.overflow)

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """The exact reference: input codes to output codes, stage by stage, in int64; a sample a row
        (a sequence design takes (samples, sequence * features) or (samples, sequence, features) and
        gives (samples, sequence * out_features), token after token)."""
        values = {INPUT: self.tokens(codes)}
        for stage in self.stages:
            result = stage.forward_codes(*(values[name] for name in stage.inputs))
            values.update((name, result) for name in stage.outputs)
        return self.samples(values[self.output])

    def fake_quant_model(self) -> nn.Module:
        """The torch model training and software accuracy use (shares the QuantLinear modules)."""
        return FakeQuantGraph(self)

    @property
    def initiation_interval(self) -> int:
        """Cycles between vectors (samples) in steady state: the slowest stage sets the pace (in a
        sequence design, the steady interval of the beat schedule, flow.compiler.timing)."""
        if self.sequence == 1:
            return max(stage.initiation_interval for stage in self.stages)
        return self._sequence_interval()[0]

    @property
    def initiation_interval_max(self) -> int:
        """The widest interval between samples while vectors stream back to back (what the clean
        phase of a simulation measures as its largest): the II, except in a sequence design whose
        first samples leave further apart (flow.compiler.timing.sequence_interval)."""
        return self.initiation_interval if self.sequence == 1 else self._sequence_interval()[1]

    @property
    def latency_estimate(self) -> int:
        """Cycles from the first input beat to the first output beat (the beat-level cycle model)."""
        return latency(self)
