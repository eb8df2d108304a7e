"""The hardware graph: a chain of stream stages, its exact reference and its cycle model.

The same stage objects give the fake-quant torch model (training, software accuracy), the
exact integer reference (test vectors, hardware accuracy) and the emitted SystemVerilog.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from flow.formats.base import Format, Overflow, Rounding
from flow.hardware.components import ELEMENTWISE_CYCLES, linear_cycles
from flow.nn import QuantLeakyReLU, QuantLinear, QuantReLU


@dataclass
class LinearStage:
    """A quantized Linear streaming IN_PAR elements in and OUT_PAR out per beat."""

    name: str
    layer: QuantLinear
    in_par: int
    out_par: int

    @property
    def in_format(self) -> Format:
        return self.layer.config.data_in

    @property
    def out_format(self) -> Format:
        return self.layer.config.data_out

    @property
    def in_features(self) -> int:
        return self.layer.in_features

    @property
    def out_features(self) -> int:
        return self.layer.out_features

    @property
    def initiation_interval(self) -> int:
        return linear_cycles(self.in_features, self.out_features, self.in_par, self.out_par)[0]

    @property
    def latency(self) -> int:
        return linear_cycles(self.in_features, self.out_features, self.in_par, self.out_par)[1]

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.layer.forward_codes(codes)


class ElementwiseStage:
    """A stage that keeps the vector and its beat width: PAR elements in and out, II 1, latency 1."""

    par: int
    features: int

    in_par = property(lambda self: self.par)
    out_par = property(lambda self: self.par)
    in_features = property(lambda self: self.features)
    out_features = property(lambda self: self.features)
    initiation_interval = property(lambda self: ELEMENTWISE_CYCLES[0])
    latency = property(lambda self: ELEMENTWISE_CYCLES[1])


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
    module: nn.Module = field(init=False)

    def __post_init__(self) -> None:
        self.module = (QuantReLU() if self.kind == "relu"
                       else QuantLeakyReLU(self.fmt, self.shift, self.rounding))

    in_format = property(lambda self: self.fmt)
    out_format = property(lambda self: self.fmt)

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.module.forward_codes(codes)


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

    in_format = property(lambda self: self.src)
    out_format = property(lambda self: self.dst)

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.dst.cast(codes, self.src, self.rounding, self.overflow)


Stage = LinearStage | ActivationStage | CastStage


@dataclass
class HardwareGraph:
    """A chain of stages from the input stream to the output stream."""

    stages: list[Stage]

    @property
    def first(self) -> LinearStage:
        return self.stages[0]  # lowering guarantees a Linear first

    @property
    def linear_stages(self) -> list[LinearStage]:
        return [s for s in self.stages if isinstance(s, LinearStage)]

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """Float inputs (any shape, flattened per sample) to the first layer's input codes."""
        c = self.first.layer.config
        return c.data_in.quantize(x.flatten(1), c.rounding, c.overflow)

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """The exact reference: input codes to output codes, stage by stage, in int64."""
        for stage in self.stages:
            codes = stage.forward_codes(codes)
        return codes

    def fake_quant_model(self) -> nn.Sequential:
        """The torch model training and software accuracy use (shares the QuantLinear modules)."""
        modules: list[nn.Module] = [nn.Flatten()]
        for stage in self.stages:
            if isinstance(stage, LinearStage):
                modules.append(stage.layer)
            elif isinstance(stage, ActivationStage):
                modules.append(stage.module)
            # a cast is what the next QuantLinear's input quantization computes
        return nn.Sequential(*modules)

    @property
    def initiation_interval(self) -> int:
        """Cycles between vectors in steady state: the slowest stage sets the pace."""
        return max(stage.initiation_interval for stage in self.stages)

    @property
    def latency_estimate(self) -> int:
        """Cycles from the first input beat to the first output beat (stage latencies summed)."""
        return sum(stage.latency for stage in self.stages)
