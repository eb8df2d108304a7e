"""Turn lowered float layers into a quantized hardware graph using the config's per-layer
formats and parallelism, inserting casts where one layer's output format is not the next
layer's input format, forks where a tensor has several readers, and FIFOs on joins."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flow.design.config import ConfigError, check_layer_names, layer_quant_config, layer_table
from flow.formats.base import Format, Overflow, Rounding
from flow.hardware.lower import INPUT, FloatGraph, FloatLayer
from flow.hardware.stages import (
    ActivationStage,
    AddStage,
    CastStage,
    ConcatStage,
    HardwareGraph,
    InputStream,
    LinearStage,
    Stage,
)
from flow.hardware.timing import balance
from flow.nn import LinearQuantConfig, QuantAdd, QuantLinear
from flow.ops import op_with_role


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def parallelism(value: Any, features: int, key: str) -> int:
    """Resolve "full" or an integer; it must divide the feature count (checked before any RTL)."""
    par = features if value == "full" else value
    if isinstance(par, str) and par.isdigit():
        par = int(par)
    if not isinstance(par, int) or isinstance(par, bool) or par < 1:
        raise ConfigError(f"{key} must be 'full' or a positive integer, got {value!r}")
    if features % par:
        raise ConfigError(f"{key}={par} does not divide the layer's {features} features; "
                          f"choose one of {_divisors(features)}")
    return par


@dataclass(frozen=True)
class _Stream:
    """What flows on a stream while the graph is built: format, beat width, vector length."""

    fmt: Format
    par: int
    features: int
    rounding: Rounding


def _input_stream(graph: FloatGraph, config: dict[str, Any]) -> tuple[InputStream, LinearQuantConfig]:
    """The input takes the first Linear's input format, and its in_par when it reads the input."""
    first = next(layer for layer in graph if layer.kind == "linear")
    qconfig = _linear_config(first, config)
    value = layer_table(config, "parallelism", first.name)["in_par"] if first.inputs == (INPUT,) else "full"
    features = graph.input_features or first.linear.in_features
    par = parallelism("full" if value == "auto" else value, features, f"parallelism.{first.name}.in_par")
    return InputStream(qconfig.data_in, par, features, qconfig.rounding, qconfig.overflow), qconfig


def _linear_config(layer: FloatLayer, config: dict[str, Any]) -> LinearQuantConfig:
    return layer_quant_config(layer_table(config, "quantization", layer.name),
                              f"quantization.{layer.name}")


def _join_format(layer: FloatLayer, config: dict[str, Any]) -> LinearQuantConfig:
    """A join's output format, rounding and overflow: its table's data_out (default: the default's)."""
    return layer_quant_config(layer_table(config, "quantization", layer.name, kind=layer.kind),
                              f"quantization.{layer.name}")


def _join_par(layer: FloatLayer, a: _Stream, b: _Stream) -> int:
    """The beat width both inputs of a join share (an add's lanes, a beat-serial concat's beats)."""
    if a.par != b.par:
        raise ConfigError(f"{layer.kind} '{layer.name}' joins {layer.inputs[0]} ({a.par} elements per beat) and "
                          f"{layer.inputs[1]} ({b.par}); give both the same parallelism (out_par of the "
                          f"layers feeding it, or parallelism.<first layer>.in_par for the input)"
                          + (", or make both fully parallel" if layer.kind == "concat" else ""))
    return a.par


def _lockstep(a: _Stream, b: _Stream) -> bool:
    """Both inputs carry a whole vector in one beat: a concat of them is one beat (II 1)."""
    return a.par == a.features and b.par == b.features


def _with_forks(stages: list[Stage], streams: dict[str, _Stream]) -> list[Stage]:
    """A broadcast after each stream read by more than one input, each reader on its own copy."""
    readers: dict[str, list[tuple[Stage, int]]] = {}
    for stage in stages:
        for slot, name in enumerate(stage.inputs):
            readers.setdefault(name, []).append((stage, slot))
    forks: dict[str, list[Stage]] = {}  # producer stream -> broadcasts placed right after it
    for name, slots in readers.items():
        source, chain = name, []
        for index, (stage, slot) in enumerate(slots[:-1]):
            fork = op_with_role("fork").fork(f"{name}_fork" + (f"_{index}" if index else ""), source, streams[name])
            chain.append(fork)
            _rewire(stage, slot, fork.outputs[0])
            source = fork.outputs[1]
        if chain:
            last_stage, last_slot = slots[-1]
            _rewire(last_stage, last_slot, source)
            forks[name] = chain
    ordered: list[Stage] = list(forks.get(INPUT, []))
    for stage in stages:
        ordered.append(stage)
        ordered += forks.get(stage.outputs[0], [])
    return ordered


MULTIPLIERS = ("dsp", "lut", "auto")


def _multiplier(table: dict[str, Any], layer: str, fully_parallel: bool) -> str:
    """``lut`` builds constant products from shifts and adds (fully parallel layers only: a
    folded lane's weight changes every cycle); ``auto`` picks it wherever it applies."""
    style = table["multiplier"]
    if style not in MULTIPLIERS:
        raise ConfigError(f"parallelism.{layer}.multiplier={style!r}; use one of {', '.join(MULTIPLIERS)}")
    if style == "lut" and not fully_parallel:
        raise ConfigError(f"parallelism.{layer}.multiplier='lut' needs a fully parallel layer (in_par and out_par "
                          f"'full'): a folded lane's weight changes every cycle; use 'dsp' or 'auto'")
    return "lut" if style == "lut" or (style == "auto" and fully_parallel) else "dsp"


def _pipeline_every(table: dict[str, Any], layer: str) -> int:
    value = table["pipeline_every"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"parallelism.{layer}.pipeline_every={value!r} must be 0 (no registers inside the "
                          f"adder trees) or a positive number of adder levels per register")
    return value


def _rewire(stage: Stage, slot: int, stream: str) -> None:
    inputs = list(stage.inputs)
    inputs[slot] = stream
    stage.inputs = tuple(inputs)


def build_hardware_graph(layers: FloatGraph, config: dict[str, Any]) -> HardwareGraph:
    """Quantized stages for the lowered layers, with formats and parallelism from ``config``,
    casts where formats differ, forks where a tensor has several readers, and FIFOs where
    branches of unequal latency meet."""
    check_layer_names(config, [layer.name for layer in layers if layer.kind in ("linear", "add", "concat")])
    source, _ = _input_stream(layers, config)
    streams = {INPUT: _Stream(source.fmt, source.par, source.features, source.rounding)}
    stages: list[Stage] = []
    alias: dict[str, str] = {}  # an elided layer's name -> the stream it passes on
    elided: dict[str, str] = {}

    def cast_to(name: str, dst: Format, rounding: Rounding, overflow: Overflow, label: str) -> str:
        info = streams[name]
        if info.fmt == dst:
            return name
        stages.append(CastStage(label, info.fmt, dst, rounding, overflow, info.par, info.features, inputs=(name,)))
        streams[label] = _Stream(dst, info.par, info.features, rounding)
        return label

    for layer in layers:
        inputs = tuple(alias.get(name, name) for name in layer.inputs)
        if layer.kind == "linear":
            linear, src = layer.linear, streams[inputs[0]]
            qconfig = _linear_config(layer, config)
            try:
                qlayer = QuantLinear.from_float(linear, qconfig)
            except ValueError as error:
                raise ConfigError(f"layer {layer.name}: {error}") from None
            ptable = layer_table(config, "parallelism", layer.name)
            in_par = parallelism(src.par if ptable["in_par"] == "auto" else ptable["in_par"], linear.in_features,
                                 f"parallelism.{layer.name}.in_par")
            if in_par != src.par:
                raise ConfigError(
                    f"parallelism.{layer.name}.in_par={in_par} but the previous layer sends {src.par} "
                    f"elements per beat; set it to {src.par} or 'auto' (or change the previous out_par)")
            out_par = parallelism(ptable["out_par"], linear.out_features, f"parallelism.{layer.name}.out_par")
            feed = cast_to(inputs[0], qconfig.data_in, qconfig.rounding, qconfig.overflow,
                           f"{layer.name}_cast_in")
            multiplier = _multiplier(ptable, layer.name, in_par == linear.in_features and out_par == linear.out_features)
            stages.append(LinearStage(layer.name, qlayer, in_par, out_par, inputs=(feed,), multiplier=multiplier,
                                      pipeline_every=_pipeline_every(ptable, layer.name)))
            streams[layer.name] = _Stream(qconfig.data_out, out_par, linear.out_features, qconfig.rounding)
        elif layer.kind in ("relu", "leaky_relu"):
            src = streams[inputs[0]]
            last = layer is layers[len(layers) - 1]
            if not getattr(src.fmt, "signed", True) and (stages or not last):  # no negative code: the identity
                alias[layer.name] = inputs[0]
                elided[layer.name] = f"{layer.kind} on unsigned {src.fmt} is the identity: no stage"
                continue
            stages.append(ActivationStage(layer.name, layer.kind, src.fmt, src.par, src.features, layer.shift,
                                          src.rounding, inputs=inputs))
            streams[layer.name] = src
        else:
            a, b = (streams[name] for name in inputs)
            qconfig = _join_format(layer, config)
            out, rounding, overflow = qconfig.data_out, qconfig.rounding, qconfig.overflow
            if layer.kind == "add":
                par = _join_par(layer, a, b)
                module = QuantAdd(a.fmt, b.fmt, out, rounding, overflow)
                stages.append(AddStage(layer.name, module, par, a.features, inputs=inputs))
                streams[layer.name] = _Stream(out, par, a.features, rounding)
            else:  # lockstep when both inputs are fully parallel, else beat-serial on one beat width
                a_par, b_par = (a.par, b.par) if _lockstep(a, b) else (_join_par(layer, a, b),) * 2
                feeds = tuple(cast_to(name, out, rounding, overflow, f"{layer.name}_cast_{side}")
                              for name, side in zip(inputs, "ab"))
                concat = ConcatStage(layer.name, out, a_par, b_par, a.features, b.features, inputs=feeds)
                stages.append(concat)
                streams[layer.name] = _Stream(out, concat.out_par, concat.out_features, rounding)
    graph = HardwareGraph(_with_forks(stages, streams), source, elided)

    def fifo(name: str, stream: str, depth: int) -> Stage:
        producer = graph.producer(stream)
        info = streams[INPUT] if producer is None else _Stream(producer.out_format, producer.out_par,
                                                               producer.out_features, Rounding.HALF_UP)
        return op_with_role("buffer").buffer(name, stream, info, depth)

    return balance(graph, fifo)
