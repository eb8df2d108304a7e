"""What the transformer ops (gelu, softmax, layer_norm) share: their lowering checks (the op acts
on the stream's whole vector), their fixed-point formats from a quantization table or a
flow.nn module, their beat width, and the row stage's place in the beat schedule.

A row op (softmax, LayerNorm) holds one row, the stream's vector, at a time: it loads the row a
beat per cycle, computes, then emits the row a beat per cycle and only then loads the next one.
Its output therefore goes through a FIFO of one row (plus two) unless it drives the design's
output, so a reader that takes beats more slowly (a folded Linear) never stretches the row op's
cycle: the cycle model stays the component's (flow.circuits.components.*_cycles).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import fx

from flow.errors import ConfigError
from flow.formats.base import Format
from flow.formats.fixed import FixedFormat
from flow.ops.base import Build, FloatLayer, Lowering, Stage, StreamInfo, Times, op_with_role, parallelism
from flow.ops.resources import constant_mul2dsp

ROW_FIFO_SLACK = 2  # a FIFO of one row plus two beats: full throughput and its own cycle


def vector_operand(node: fx.Node, ctx: Lowering, what: str, dims: tuple[int, ...] | None = None) -> int:
    """Check that ``node`` acts on the stream's whole vector: its input is one vector per sample
    (batch, features), or per token (batch, sequence, features) in a sequence design, and, for a row op, ``dims`` (the dimensions it reduces over) is that last
    dimension. Returns the vector's length."""
    value = node.args[0].meta.get("val") if isinstance(node.args[0], fx.Node) else None
    if value is None:
        raise ctx.unsupported(node, f"{what} of an operand of unknown shape in")
    shape = tuple(value.shape)
    if dims is not None and any(d % len(shape) != len(shape) - 1 for d in dims):
        raise ctx.unsupported(node, f"{what} over dimension {dims[0] if len(dims) == 1 else dims} of a {shape} "
                                    f"tensor (flow streams one vector a sample: use the last dimension, dim=-1) in")
    if not ctx.token_shape(shape):
        raise ctx.unsupported(node, f"{what} of a {shape} tensor (flow streams one vector a sample, or a token of "
                                    f"a (batch, sequence, features) input: flatten to (batch, features) first) in")
    return int(shape[-1])


def fixed_format(fmt: Format, layer: FloatLayer, role: str, signed: bool = True) -> FixedFormat:
    """A transformer op's format: fixed point (its components take nothing else), signed where the
    component reads or writes two's complement."""
    if not isinstance(fmt, FixedFormat):
        raise ConfigError(f"{layer.kind} '{layer.name}' computes in fixed point, but its {role} is {fmt}; set "
                          f"quantization.{layer.name}.name = 'fixed'")
    if fmt.frac < 0:
        raise ConfigError(f"{layer.kind} '{layer.name}' takes a {role} frac >= 0 (its component is verified there), "
                          f"got {fmt}; set quantization.{layer.name}.{role}_frac_width >= 0")
    if signed and not fmt.signed:
        raise ConfigError(f"{layer.kind} '{layer.name}' takes a signed {role}, got {fmt}; set "
                          f"quantization.{layer.name}.{role}_signed = true")
    return fmt


def stream_par(layer: FloatLayer, ctx: Build, src: StreamInfo) -> int:
    """The op's beat width: its stream's (in_par 'auto'), or in_par from its parallelism table,
    which must divide the row and equal what the stream carries (flow does not re-beat a stream)."""
    value = ctx.tables[layer.name].in_par
    par = parallelism(src.par if value == "auto" else value, src.features, f"parallelism.{layer.name}.in_par")
    if par != src.par:
        raise ConfigError(f"parallelism.{layer.name}.in_par={par} but the stream into {layer.kind} '{layer.name}' "
                          f"carries {src.par} elements per beat; set it to {src.par} or 'auto' (or change the "
                          f"out_par of the layer before it)")
    return par


def component_check(layer: FloatLayer, parameters: Callable[[], dict[str, Any]], keys: str = "") -> dict[str, Any]:
    """The component's parameters, its refusals (a format too narrow or too wide) as ConfigErrors;
    ``keys`` names the config keys that fix them."""
    try:
        return parameters()
    except ValueError as error:
        raise ConfigError(f"{layer.kind} '{layer.name}': {error}{keys}") from None


def add_row_stage(ctx: Build, layer: FloatLayer, stage: Stage, out: StreamInfo) -> None:
    """Add a row op, and a FIFO of one row after it unless it drives the design's output."""
    ctx.add(stage, out)
    if ctx.is_last(layer):
        return
    beats = out.features // out.par
    fifo = op_with_role("buffer").buffer(f"{layer.name}_out_fifo", stage.name, out, beats + ROW_FIFO_SLACK)
    ctx.add(fifo, out)
    ctx.alias[layer.name] = fifo.name


class RowStage(Stage):
    """A row op's stage: ``features`` elements a row (the stream's vector), PAR a beat in and out,
    one row at a time; a subclass gives ``cycles`` (its component's (II, latency)) and formats."""

    par: int
    features: int
    cycles: tuple[int, int]

    in_par = property(lambda self: self.par)
    out_par = property(lambda self: self.par)
    in_features = property(lambda self: self.features)
    out_features = property(lambda self: self.features)
    outputs = property(lambda self: (self.name,))
    initiation_interval = property(lambda self: self.cycles[0])
    latency = property(lambda self: self.cycles[1])
    # the formats and the exact path are the flow.nn module's (a subclass's ``module``)
    in_format = property(lambda self: self.module.in_fmt)
    out_format = property(lambda self: self.module.out_fmt)

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.module.forward_codes(codes)

    def schedule(self, offered: dict[str, Times], taken: dict[str, Times],
                 handover: Callable[[str, Any], Times], vectors: int) -> None:
        row_schedule(self, offered, taken, vectors)


def row_schedule(stage: RowStage, offered: dict[str, Times], taken: dict[str, Times], vectors: int) -> None:
    """A row op in the beat schedule: it takes a row's beats one a cycle once it is free, offers the
    row's first beat ``latency - (beats - 1)`` cycles after the row's last beat, a beat a cycle,
    and is free again the cycle after the last (its FIFO or the output takes every beat at once)."""
    beats = stage.features // stage.par
    gap = stage.latency - (beats - 1)
    arrivals = offered[stage.inputs[0]]
    took: Times = []
    out: Times = []
    free = 0
    for vector in range(vectors):
        for j in range(beats):
            time = max(arrivals[vector * beats + j], took[-1] + 1 if took else 0, free if j == 0 else 0)
            took.append(time)
        first = took[-1] + gap
        out += [first + j for j in range(beats)]
        free = out[-1] + 1
    taken[stage.inputs[0]] = took
    offered[stage.outputs[0]] = out


def clog2(value: int) -> int:
    """SystemVerilog's $clog2."""
    return max(int(value) - 1, 0).bit_length()


def row_index_dsps(length: int, par: int) -> int:
    """DSP48E1s of a row op's element index ``beat * PAR`` (one product, shared by the lanes): a
    constant product of the beat counter, narrowed to the index's bits (LUTs below 9 bits, i.e.
    rows of at most 256 elements, and a shift where PAR is a power of two)."""
    beats = length // par
    return constant_mul2dsp(clog2(beats) if beats > 1 else 1, False, par, clog2(length) if length > 1 else 1)
