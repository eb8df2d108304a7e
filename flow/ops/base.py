"""The op registry: one module of flow.ops per layer kind, registered by a decorator as number
formats are (flow.formats.base.register_format).

An op owns everything about its kind: the ``torch.export`` nodes it lowers (``torch_ops`` and
``lower``), the builder from a lowered float layer to quantized stages (``build``), and the
stage class, whose methods give its exact reference, its cycles and place in the beat schedule,
its RTL component and parameters, its report row and its estimator features. Lowering
(flow.compiler.lower), the graph builder (flow.compiler.build_graph), the cycle model
(flow.compiler.timing), emission, reports and the estimator loop over the registry and the
stages' methods; none of them names a kind.

This module holds what the ops share: the lowered float layer, the contexts lowering and
building hand to an op, the base stage, and the beat-schedule primitive.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import fx, nn

from flow.circuits.components import ELEMENTWISE_CYCLES
from flow.errors import ConfigError
from flow.formats.base import Format, Overflow, Rounding
from flow.graph.capture import owner

INPUT = "input"  # the name of the model's input stream; no layer takes it
Times = list[int]  # the cycle of every beat of a stream


class LoweringError(ValueError):
    """The graph holds something flow cannot turn into hardware."""


# ---- the registry ----
class Op:
    """One layer kind. Subclasses set what applies and register with ``@register_op(kind, ...)``."""

    kinds: tuple[str, ...] = ()  # set by register_op: the FloatLayer kinds it builds
    torch_ops: tuple[str, ...] = ()  # torch.export op names (flow.graph.ops.op_name) it lowers
    lowers: str = ""  # how the supported list names it in errors
    has_table: bool = False  # it has its own quantization/parallelism table (by name, or by="type")
    sets_input: bool = False  # the first layer of this kind gives the design's input its format
    role: str | None = None  # "fork" or "buffer": the graph builder inserts it itself

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        """Add the node's float layer(s) to ``ctx`` (or map the node to the layer it passes on)."""
        raise LoweringError(f"{type(self).__name__} lowers no torch.export node")

    def build(self, layer: FloatLayer, ctx: Build) -> None:
        """Append the layer's quantized stage(s) to ``ctx`` and record its output stream."""
        raise ConfigError(f"{type(self).__name__} builds no stage from a lowered layer")


_REGISTRY: dict[str, Op] = {}  # layer kind -> op
_TORCH_OPS: dict[str, Op] = {}  # torch op name -> op
_OPS: list[Op] = []  # every op, lowering-only ones (no kind) included, in registration order


def register_op(*kinds: str) -> Callable[[type[Op]], type[Op]]:
    """Register an op class under the layer kinds it builds (none: a lowering rule only) and the
    torch ops it lowers."""
    def decorate(cls: type[Op]) -> type[Op]:
        op = cls()
        op.kinds = kinds
        _OPS.append(op)
        for kind in kinds:
            if kind in _REGISTRY:
                raise ValueError(f"layer kind {kind!r} is registered twice")
            _REGISTRY[kind] = op
        for name in cls.torch_ops:
            _TORCH_OPS[name] = op
        return cls
    return decorate


def op_for(kind: str) -> Op:
    """The op that builds layers of ``kind``."""
    if kind not in _REGISTRY:
        raise KeyError(f"layer kind {kind!r} is not registered (known: {', '.join(_REGISTRY)})")
    return _REGISTRY[kind]


def lowering_rule(torch_op: str) -> Op | None:
    """The op lowering a torch.export op name, if any."""
    return _TORCH_OPS.get(torch_op)


def registered_ops() -> list[Op]:
    """Every op once, in registration order."""
    return list(_OPS)


def op_with_role(role: str) -> Op:
    return next(op for op in registered_ops() if op.role == role)


def supported() -> str:
    """What flow lowers, for error messages."""
    return ", ".join(op.lowers for op in registered_ops() if op.lowers)


def table_kinds() -> list[str]:
    """Kinds with their own quantization/parallelism tables (MASE's ``by = "type"`` keys)."""
    return [kind for op in registered_ops() if op.has_table for kind in op.kinds]


# ---- lowering ----
@dataclass
class FloatLayer:
    """One hardware layer before quantization: a Linear (BatchNorm folded in), an activation, or
    a join (``add``, ``concat``) of two earlier layers' outputs. What only its kind needs, its op
    keeps in ``module`` and ``attrs``."""

    kind: str  # a registered kind (flow.ops): "linear", "relu", "leaky_relu", "add", "concat", ...
    name: str  # unique: the module path ("fc1"), else the graph node's name ("add")
    inputs: tuple[str, ...] = (INPUT,)  # names of the layers feeding it (INPUT: the model input)
    module: nn.Module | None = None  # the float module it computes, if any (a Linear's nn.Linear)
    attrs: dict[str, Any] = field(default_factory=dict)  # e.g. a leaky ReLU's slope 2**-shift: {"shift": k}
    features: int = 0  # elements of the output vector


@dataclass
class FloatGraph:
    """The lowered model: layers in topological order, the last one the output."""

    layers: list[FloatLayer]
    input_features: int  # elements of a token (a sample's vector when the design is not a sequence design)
    sequence: int = 1  # tokens a sample: > 1 for an input of shape (batch, sequence, features)

    def __iter__(self) -> Iterator[FloatLayer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> FloatLayer:
        return self.layers[index]


class _Namer:
    """Unique layer names: the module path, else the node's name, with a suffix on a repeat."""

    def __init__(self) -> None:
        self.taken = {INPUT}

    def __call__(self, preferred: str, node: fx.Node) -> str:
        name, count = preferred or node.name, 1
        while name in self.taken:
            name, count = f"{preferred or node.name}_{count}", count + 1
        self.taken.add(name)
        return name


@dataclass
class Lowering:
    """What an op's ``lower`` reads and writes: the layers so far and which layer each node carries."""

    model: nn.Module
    layers: list[FloatLayer] = field(default_factory=list)
    source: dict[fx.Node, str] = field(default_factory=dict)  # node -> the layer whose output it carries
    by_name: dict[str, FloatLayer] = field(default_factory=dict)
    name_of: _Namer = field(default_factory=_Namer)
    sequence: int = 1  # tokens a sample (the input's second dimension when it is (batch, sequence, features))
    heads: dict[fx.Node, Any] = field(default_factory=dict)  # node -> its per-head streams (flow.ops.heads.Heads)

    def token_shape(self, shape: tuple[int, ...]) -> bool:
        """A tensor the stream carries: one vector a sample (batch, features), or one a token
        (batch, sequence, features) in a sequence design."""
        return len(shape) == 2 or (self.sequence > 1 and len(shape) == 3 and shape[1] == self.sequence)

    def add(self, layer: FloatLayer, node: fx.Node | None = None) -> None:
        """A new layer; ``node`` (if given) carries its output."""
        self.layers.append(layer)
        self.by_name[layer.name] = layer
        if node is not None:
            self.source[node] = layer.name

    def feeding(self, node: fx.Node, arg: Any) -> str:
        """The layer whose output ``arg`` (an operand of ``node``) carries."""
        if arg in self.heads:
            raise self.unsupported(node, f"a read of per-head tensor '{arg.name}' (merge the heads first: "
                                         f"transpose(1, 2) then reshape(b, s, heads * d)) by")
        if not isinstance(arg, fx.Node) or arg not in self.source:
            raise LoweringError(f"node '{node.name}' ({node.target}) reads '{arg}', which is not a lowered "
                                f"tensor; flow lowers {supported()}")
        return self.source[arg]

    def previous(self, node: fx.Node) -> str:
        """The layer feeding a one-operand node."""
        if not node.args:
            raise self.unsupported(node)
        return self.feeding(node, node.args[0])

    def unsupported(self, node: fx.Node, why: str = "unsupported op") -> LoweringError:
        path = owner(node)
        module = type(self.model.get_submodule(path)).__name__ if path else "top level"
        return LoweringError(f"{why} {node.target} at node '{node.name}' (module '{path or '-'}': {module}); "
                             f"flow lowers {supported()}")


def lower_join(node: fx.Node, ctx: Lowering, kind: str, operands: list[fx.Node]) -> None:
    """A join of two or more layers' outputs: a left fold of pairwise ``kind`` layers."""
    path = owner(node)
    inputs = [ctx.feeding(node, arg) for arg in operands]
    while len(inputs) > 2:  # cat of many: a left fold of pairwise concatenations
        pair = FloatLayer(kind, ctx.name_of(f"{path}.{node.name}" if path else node.name, node), (inputs[0], inputs[1]))
        ctx.add(pair)
        inputs = [pair.name, *inputs[2:]]
    ctx.add(FloatLayer(kind, ctx.name_of(f"{path}.{node.name}" if path else node.name, node), tuple(inputs),
                       features=node_features(node)), node)


def join_shapes(node: fx.Node, ctx: Lowering, operands: list[Any]) -> list[tuple[int, ...]]:
    """The operands' shapes: tensors of the graph, one vector per sample (or token) each."""
    if not all(isinstance(arg, fx.Node) for arg in operands):
        raise ctx.unsupported(node, "an operand that is not a tensor of the graph in")
    shapes = [tuple(arg.meta["val"].shape) if arg.meta.get("val") is not None else None for arg in operands]
    if any(shape is None or not ctx.token_shape(shape) for shape in shapes):
        raise ctx.unsupported(node, f"a join of non-vector shapes {shapes} in")
    return shapes


def node_features(node: fx.Node) -> int:
    """Elements of the vector a node computes (0 when unknown)."""
    value = node.meta.get("val")
    return int(value.shape[-1]) if value is not None and value.dim() >= 1 else 0


# ---- building the hardware graph ----
@dataclass(frozen=True)
class StreamInfo:
    """What flows on a stream while the graph is built: format, beat width, vector length."""

    fmt: Format
    par: int
    features: int
    rounding: Rounding


@dataclass(frozen=True)
class InputStream:
    """The design's input: its format, how floats are quantized into it, and its beat width."""

    fmt: Format
    par: int
    features: int
    rounding: Rounding
    overflow: Overflow


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
class LayerParallelism:
    """A layer's parallelism table (``[parallelism.default]`` or ``[parallelism.<layer>]``), typed.

    ``in_par``/``out_par`` are elements per beat: a positive integer, ``"full"`` (every element
    in one beat) or, for ``in_par``, ``"auto"`` (the previous layer's ``out_par``). They stay as
    written (an integer, or a string from the command line) and are resolved against the layer's
    feature count by ``parallelism()`` when the layer is built, which names the key on an error.
    ``multiplier``: ``dsp``, ``lut`` (shift-add constant products) or ``auto``; ``pipeline_every``:
    adder levels per register inside a shift-add tree (0: none). The defaults are the schema's."""

    in_par: int | str = "auto"
    out_par: int | str = "full"
    multiplier: str = "dsp"
    pipeline_every: int = 0


@dataclass
class Build:
    """What an op's ``build`` reads and writes while the hardware graph is built. The config
    reaches the ops as data, resolved before any op runs: each layer with its own tables (an op
    with ``has_table``) has its quantization (a LinearQuantConfig: formats and modes) and its
    parallelism table (a LayerParallelism), by layer name."""

    layers: FloatGraph
    quant: Mapping[str, Any]  # layer name -> LinearQuantConfig
    tables: Mapping[str, LayerParallelism]  # layer name -> its parallelism table
    streams: dict[str, StreamInfo] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    alias: dict[str, str] = field(default_factory=dict)  # an elided layer's name -> the stream it passes on
    elided: dict[str, str] = field(default_factory=dict)  # layer -> why it needs no hardware

    @property
    def sequence(self) -> int:
        """Tokens a sample (1: one vector a sample)."""
        return self.layers.sequence

    def inputs(self, layer: FloatLayer) -> tuple[str, ...]:
        """The streams feeding a layer (an elided layer's readers read what it passed on)."""
        return tuple(self.alias.get(name, name) for name in layer.inputs)

    def is_last(self, layer: FloatLayer) -> bool:
        return layer is self.layers[len(self.layers) - 1]

    def add(self, stage: Stage, stream: StreamInfo) -> None:
        self.stages.append(stage)
        self.streams[stage.name] = stream

    def join_operands(self, layer: FloatLayer) -> tuple[tuple[str, ...], StreamInfo, StreamInfo, Any]:
        """A join's input streams, what each carries, and its quantization (its own table's data_out,
        rounding and overflow; default: the default table's)."""
        inputs = self.inputs(layer)
        a, b = (self.streams[name] for name in inputs)
        return inputs, a, b, self.quant[layer.name]

    def elide(self, layer: FloatLayer, stream: str, why: str) -> None:
        self.alias[layer.name] = stream
        self.elided[layer.name] = why


def join_par(layer: FloatLayer, a: StreamInfo, b: StreamInfo, hint: str = "") -> int:
    """The beat width both inputs of a join share (an add's lanes, a beat-serial concat's beats)."""
    if a.par != b.par:
        raise ConfigError(f"{layer.kind} '{layer.name}' joins {layer.inputs[0]} ({a.par} elements per beat) and "
                          f"{layer.inputs[1]} ({b.par}); give both the same parallelism (out_par of the "
                          f"layers feeding it, or parallelism.<first layer>.in_par for the input)" + hint)
    return a.par


# ---- stages ----
def ident(name: str) -> str:
    """A name made a SystemVerilog identifier fragment."""
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def take(offered: Times, interval: int) -> Times:
    """Handover cycles of beats offered at ``offered`` to a consumer taking one per ``interval``."""
    taken: Times = []
    for time in offered:
        taken.append(time if not taken else max(time, taken[-1] + interval))
    return taken


class Stage:
    """A stage of the hardware graph. Each op's stage class gives its formats, ``forward_codes``,
    ``initiation_interval`` and ``latency``, and the methods below; the defaults fit a stage with
    one input that passes every beat on after ``latency`` cycles and needs no generated file."""

    # ---- the cycle model (flow.compiler.timing) ----
    def cycles_per_sample(self, sequence: int) -> int:
        """Cycles the stage needs for one sample of ``sequence`` tokens (its II a token, times the
        tokens; a stage holding a whole sequence, a matmul, gives its own)."""
        return self.initiation_interval * sequence

    def sequence_out(self, sequence: int) -> int:
        """Tokens a sample on its outputs, given ``sequence`` on its first input (the same, except
        a stage that keeps some tokens of a sequence: select_token keeps one)."""
        return sequence

    def accept_interval(self, graph: Any) -> int:
        """Fewest cycles between two beats the stage takes on one input."""
        return 1

    def schedule(self, offered: dict[str, Times], taken: dict[str, Times],
                 handover: Callable[[str, Stage], Times], vectors: int) -> None:
        """Its place in the beat schedule: from the cycles its inputs offer beats (``offered``),
        set when it takes them (``taken``, or through ``handover``) and when it offers its outputs'."""
        inputs = handover(self.inputs[0], self)
        for name in self.outputs:
            offered[name] = [t + self.latency for t in inputs]

    # ---- emission (flow.emit.rtl) ----
    def component(self, design: str = "") -> str:
        """The module the stage instantiates: a library component or a generated one."""
        raise NotImplementedError

    def library_modules(self) -> list[str]:
        """The library components its module needs (hw/rtl)."""
        return [self.component()]

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        """The parameters of its instance in the top (package: the design's weight package)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for the comment above its instance."""
        raise NotImplementedError

    def sources(self, design: str) -> list[tuple[str, str]]:
        """Generated SystemVerilog files (name, text), compiled after the library."""
        return []

    def data_files(self, design: str) -> list[tuple[str, str]]:
        """Generated data files beside the sources (name, text): weight ROMs."""
        return []

    def package_lines(self, design: str) -> list[str]:
        """Its constants in the design's weight package."""
        return []

    # ---- report and estimator ----
    def report_row(self) -> dict[str, Any]:
        """Its own fields of the report's stage row (``kind`` first)."""
        raise NotImplementedError

    def estimate_kind(self) -> str:
        """The estimator's calibration class (flow/estimate/calibration.json)."""
        return "other"

    def estimate_features(self) -> dict[str, float]:
        """The counts its LUT and FF grow with, besides the stream bits every stage has."""
        return {}

    def dsp_count(self) -> int:
        return 0


class ElementwiseStage(Stage):
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


def lockstep_join(stage: Stage, offered: dict[str, Times], taken: dict[str, Times]) -> None:
    """A join taking one beat of each input in the same cycle (an add, a lockstep concat)."""
    a, b = (offered[name] for name in stage.inputs)
    both = take([max(x, y) for x, y in zip(a, b)], 1)
    taken[stage.inputs[0]] = taken[stage.inputs[1]] = both
    offered[stage.outputs[0]] = [t + stage.latency for t in both]
