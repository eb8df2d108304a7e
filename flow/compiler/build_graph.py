"""Turn lowered float layers into a quantized hardware graph using the config's per-layer
formats and parallelism: each layer goes to its kind's op (flow.ops), which adds its stage and
any cast its input needs; then a fork goes after every stream with several readers and a FIFO
before every join input that would wait for the other."""
from __future__ import annotations

from flow.compiler.hardware_graph import HardwareGraph, InputStream, Stage
from flow.compiler.timing import balance
from flow.config.schema import DesignConfig, LayerTables
from flow.formats.base import Rounding
from flow.nn import LinearQuantConfig
from flow.ops import INPUT, Build, FloatGraph, FloatLayer, StreamInfo, op_for, op_with_role
from flow.ops.base import parallelism

__all__ = ["build_hardware_graph", "parallelism"]


def _with_forks(stages: list[Stage], streams: dict[str, StreamInfo]) -> list[Stage]:
    """A fork after each stream read by more than one input, each reader on its own copy."""
    readers: dict[str, list[tuple[Stage, int]]] = {}
    for stage in stages:
        for slot, name in enumerate(stage.inputs):
            readers.setdefault(name, []).append((stage, slot))
    forks: dict[str, list[Stage]] = {}  # producer stream -> forks placed right after it
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


def _rewire(stage: Stage, slot: int, stream: str) -> None:
    inputs = list(stage.inputs)
    inputs[slot] = stream
    stage.inputs = tuple(inputs)


def _context(layers: FloatGraph, config: DesignConfig) -> Build:
    """The config as the ops read it, resolved once for every layer with its own tables (checked
    to name layers of the model): its quantization (its name's table, or its kind's under
    by="type", over the default) as flow's number types, and its parallelism table."""
    tabled = [layer for layer in layers if op_for(layer.kind).has_table]
    shared = [layer.attrs["table"] for layer in tabled if "table" in layer.attrs]
    config.check_layer_names([layer.name for layer in tabled] + list(dict.fromkeys(shared)))

    def key(layer: FloatLayer, tables: LayerTables) -> str:
        """A layer's own table, else the one it shares (a head's: its Linear's or its op's)."""
        return layer.attrs["table"] if "table" in layer.attrs and layer.name not in tables.layers else layer.name

    quant: dict[str, LinearQuantConfig] = {
        layer.name: config.quantization.for_layer(key(layer, config.quantization), layer.kind).linear_config(
            f"quantization.{key(layer, config.quantization)}") for layer in tabled}
    return Build(layers, quant, {layer.name: config.parallelism.table(key(layer, config.parallelism))
                                 for layer in tabled})


def build_hardware_graph(layers: FloatGraph, config: DesignConfig) -> HardwareGraph:
    """Quantized stages for the lowered layers, with formats and parallelism from ``config``,
    casts where formats differ, forks where a tensor has several readers, and FIFOs where
    branches of unequal latency meet."""
    ctx = _context(layers, config)
    first = next(layer for layer in layers if op_for(layer.kind).sets_input)
    source: InputStream = op_for(first.kind).input_stream(first, ctx)
    ctx.streams[INPUT] = StreamInfo(source.fmt, source.par, source.features, source.rounding)
    for layer in layers:
        op_for(layer.kind).build(layer, ctx)
    graph = HardwareGraph(_with_forks(ctx.stages, ctx.streams), source, ctx.elided, layers.sequence)

    def fifo(name: str, stream: str, depth: int) -> Stage:
        producer = graph.producer(stream)
        info = ctx.streams[INPUT] if producer is None else StreamInfo(producer.out_format, producer.out_par,
                                                                      producer.out_features, Rounding.HALF_UP)
        return op_with_role("buffer").buffer(name, stream, info, depth)

    return balance(graph, fifo)
