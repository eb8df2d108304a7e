"""linear: a quantized Linear (BatchNorm1d folded in) streaming IN_PAR elements in and OUT_PAR out
per beat; with ``multiplier="lut"`` its constant weights are built from shifts and adds."""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from flow.circuits.cmvm import bits_for, csd
from flow.circuits.components import linear_cycles, linear_parameters, linear_steps
from flow.circuits.constant_linear import ConstantLinear
from flow.circuits.packing import pack_codes, sv_literal
from flow.circuits.shift_add import cmvm_module
from flow.errors import ConfigError
from flow.graph.capture import owner
from flow.nn import QuantLinear
from flow.ops.base import (
    INPUT,
    Build,
    FloatLayer,
    InputStream,
    LayerParallelism,
    Lowering,
    Op,
    Stage,
    StreamInfo,
    Times,
    ident,
    parallelism,
    register_op,
)
from flow.ops.cast import cast_to
from flow.ops.resources import bits, constant_on_dsp, dsp_per_product, signed_bits

MULTIPLIERS = ("dsp", "lut", "auto")


# ---- RTL encodings of a layer's constants ----
def constant_prefix(name: str) -> str:
    """A layer's constant prefix: an identifier even for nn.Sequential's "0" (then "L0")."""
    upper = ident(name).upper()
    return upper if upper[:1].isalpha() else f"L{upper}"


def weights_file(design: str, stage: LinearStage) -> str:
    """The ROM file of a folded layer, a name in the design's rtl folder."""
    return f"{ident(design)}_{ident(stage.name)}_weights.hex"


def constant_module(design: str, stage: LinearStage) -> str:
    """The generated module of a shift-add layer."""
    return f"{ident(design)}_{ident(stage.name)}_cmvm"


def weight_literals(layer: QuantLinear) -> tuple[str, str]:
    """The layer's weight and bias codes as sized SystemVerilog literals (WEIGHTS, BIAS)."""
    weights = layer.weight_codes().flatten().tolist()  # (o, i) at o*IN + i
    w_bits = len(weights) * layer.config.weight.width
    return sv_literal(pack_codes(weights, layer.config.weight.width), w_bits), bias_literal(layer)


def bias_literal(layer: QuantLinear) -> str:
    """The layer's bias codes, aligned to the accumulator, as one sized literal (BIAS)."""
    width = layer.accumulator_width()
    return sv_literal(pack_codes(layer.bias_codes().tolist(), width), layer.out_features * width)


def weight_words(layer: QuantLinear, in_par: int, out_par: int) -> list[int]:
    """The weight ROM of a linear with ``in_par`` x ``out_par`` lanes (hw/rtl/linear.sv): word
    s = beat*OUT_GROUPS + group holds weight (group*out_par + lo, beat*in_par + li) at lane
    lo*in_par + li, each lane ``weight.width`` bits (two's complement)."""
    codes = layer.weight_codes().tolist()  # [o][i]
    groups, beats = layer.out_features // out_par, layer.in_features // in_par
    return [pack_codes([codes[group * out_par + lo][beat * in_par + li]
                        for lo in range(out_par) for li in range(in_par)], layer.config.weight.width)
            for beat in range(beats) for group in range(groups)]


def weights_hex(layer: QuantLinear, in_par: int, out_par: int) -> str:
    """The ROM as ``$readmemh`` reads it: one word a line, word 0 first, fixed-width hex digits."""
    digits = (in_par * out_par * layer.config.weight.width + 3) // 4
    return "".join(f"{word:0{digits}x}\n" for word in weight_words(layer, in_par, out_par))


@dataclass
class LinearStage(Stage):
    """A quantized Linear streaming IN_PAR elements in and OUT_PAR out per beat. With
    ``multiplier="lut"`` (fully parallel only) its weights are constants built from shifts and
    adds (flow.circuits.shift_add), registered every ``pipeline_every`` adder levels."""

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
    def steps(self) -> int:
        """Weight words a vector steps through: 1 fully parallel, more when folded."""
        return linear_steps(self.in_features, self.out_features, self.in_par, self.out_par)

    @property
    def folded(self) -> bool:
        """Whether its weights live in a ROM file rather than the package (a DSP layer only)."""
        return self.constant is None and self.steps > 1

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

    # ---- cycle model ----
    def accept_interval(self, graph: Any) -> int:
        """A folded layer holds each input beat for OUT/OUT_PAR cycles."""
        return 1 if self.constant is not None else self.out_features // self.out_par

    def schedule(self, offered: dict[str, Times], taken: dict[str, Times],
                 handover: Callable[[str, Any], Times], vectors: int) -> None:
        """A vector's first output beat leaves two cycles after its last input beat's groups; a
        shift-add layer passes each vector on after its pipeline latency."""
        if self.constant is not None:
            super().schedule(offered, taken, handover, vectors)
            return
        inputs = handover(self.inputs[0], self)
        in_beats, groups = self.in_features // self.in_par, self.out_features // self.out_par
        out: Times = []
        for vector in range(vectors):
            first = inputs[vector * in_beats + in_beats - 1] + groups + 2
            for j in range(groups):
                out.append(max(first + j, out[-1] + 1) if out else first + j)
        offered[self.outputs[0]] = out

    # ---- emission ----
    def component(self, design: str = "") -> str:
        return constant_module(design, self) if self.constant is not None else "linear"

    def library_modules(self) -> list[str]:
        return ["fixed_cast"] if self.constant is not None else ["linear"]

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        if self.constant is not None:
            return {}  # the generated module is specific to its weights and formats
        prefix = constant_prefix(self.name)
        if self.folded:
            return linear_parameters(self.layer, self.in_par, self.out_par, None, f"{package}::{prefix}_BIAS",
                                     weights_file=weights_file(design, self))
        return linear_parameters(self.layer, self.in_par, self.out_par,
                                 f"{package}::{prefix}_WEIGHTS", f"{package}::{prefix}_BIAS")

    def describe(self) -> str:
        c = self.layer.config
        style = (f"shift-add, {self.constant.graph.adders} adders, {self.constant.segments} segment(s)"
                 if self.constant is not None else f"par {self.in_par}x{self.out_par}")
        return (f"linear {self.in_features}->{self.out_features}, {c.data_in} x {c.weight} -> "
                f"{c.data_out}, {c.rounding.value}/{c.overflow.value}, {style}, II {self.initiation_interval}")

    def sources(self, design: str) -> list[tuple[str, str]]:
        if self.constant is None:
            return []
        module = constant_module(design, self)
        return [(f"{module}.sv", cmvm_module(module, self.constant))]

    def data_files(self, design: str) -> list[tuple[str, str]]:
        if not self.folded:
            return []
        return [(weights_file(design, self), weights_hex(self.layer, self.in_par, self.out_par))]

    def package_lines(self, design: str) -> list[str]:
        if self.constant is not None:
            return []  # its generated netlist holds its constants
        layer, c, acc = self.layer, self.layer.config, self.layer.acc_format
        prefix = constant_prefix(self.name)
        lines = [f"    // {self.name}: {layer.out_features}x{layer.in_features} weights {c.weight}, "
                 f"bias aligned to {acc}"]
        if self.folded:
            lines.append(f"    // weights: ROM file {weights_file(design, self)}")
        else:
            lines += [f"    localparam logic [{layer.out_features * layer.in_features * c.weight.width - 1}:0] "
                      f"{prefix}_WEIGHTS =",
                      f"        {weight_literals(layer)[0]};"]
        return lines + [
            f"    localparam logic [{layer.out_features * layer.accumulator_width() - 1}:0] {prefix}_BIAS =",
            f"        {bias_literal(layer)};",
        ]

    # ---- report and estimator ----
    def report_row(self) -> dict[str, Any]:
        c = self.layer.config
        if self.constant is not None:
            graph = self.constant.graph
            multiplier = f"shift-add: {graph.adders} adders, depth {graph.depth}"
            acc_bits = max(bits_for(*self.constant.accumulator_bounds(o)) for o in range(self.out_features))
        else:
            multiplier, acc_bits = f"dsp: {self.in_par * self.out_par} multipliers", self.layer.accumulator_width()
        return dict(kind="linear", weight_format=str(c.weight), bias_format=str(c.bias),
                    accumulator=f"{acc_bits} bits (format bound {self.layer.acc_format.width}), "
                                f"frac {self.layer.acc_format.frac}",
                    rounding=c.rounding.value, overflow=c.overflow.value, multiplier=multiplier,
                    multipliers=self.in_par * self.out_par,
                    nonzero_weights=int((self.layer.weight_codes() != 0).sum()))

    def estimate_kind(self) -> str:
        if self.constant is not None:
            return "linear_lut"
        if self.steps == 1:
            return "linear_parallel"
        c = self.layer.config
        on_dsp = dsp_per_product(signed_bits(c.data_in), signed_bits(c.weight)) > 0
        return "linear_folded" if on_dsp else "linear_folded_lut_products"

    def estimate_features(self) -> dict[str, float]:
        if self.constant is not None:
            return self._shift_add_features()
        return self._parallel_features() if self.steps == 1 else self._folded_features()

    def _shift_add_features(self) -> dict[str, float]:
        """A shift-add layer: the adder bits that take a LUT, each output's cast, pipeline registers."""
        const = self.constant
        acc = [max(2, bits(*const.accumulator_bounds(o))) for o in range(self.out_features)]
        return {"adder_bits": float(const.held.lut_bits(const.graph)), "cast_bits": float(sum(acc)),
                "register_bits": float(self._pipeline_bits())}

    def _pipeline_bits(self) -> int:
        """Register bits inside a pipelined shift-add layer, exactly as the netlist declares them: each
        node's emitted width times the register stages that carry it to its last reader."""
        const = self.constant
        if const is None or const.segments == 1:
            return 0
        return sum(const.widths[n] * (seg - const.segment(n)) for n, seg in const.last_uses.items())

    def _parallel_features(self) -> dict[str, float]:
        """A fully parallel DSP layer (constant weights): LUT-built constant products, each product's
        bits (the tree's leaves, as wide as data and weight code), the tree's depth growth per output
        (n log2 n for n nonzero weights), its accumulator-wide adders and casts, the bits of the
        input register that some weight reads (Yosys drops the rest: a column of zero weights
        registers nothing) and the output skid buffer's two registers of the output vector."""
        layer = self.layer
        x, acc = signed_bits(layer.config.data_in), layer.accumulator_width()
        codes = layer.weight_codes()
        flat = [code for code in codes.flatten().tolist() if code]
        per_output = (codes != 0).sum(dim=1).tolist()
        return {"lut_mult_bits": float(sum(x * max(len(csd(c)) - 1, 0) for c in flat if not constant_on_dsp(x, c))),
                "adder_bits": float(len(flat) * acc), "cast_bits": float(self.out_features * acc),
                "product_bits": float(sum(x + bits(c, c) - 1 for c in flat)),
                "tree_bits": float(sum(n * math.log2(n) for n in per_output if n)),
                "read_input_bits": float(int((codes != 0).any(dim=0).sum()) * layer.config.data_in.width),
                "skid_bits": float(2 * self.out_features * layer.config.data_out.width)}

    def _folded_features(self) -> dict[str, float]:
        """A folded layer (hw/rtl/linear.sv): LUT-built lane products, one accumulator-wide adder per
        lane, the group multiplexers over the accumulators and results (their cost per bit grows with
        the log of the groups: a selection tree), the weight ROM in 64-bit LUTs, the output casts and
        skid buffer, and the accumulator and result registers."""
        layer = self.layer
        x, w, acc = signed_bits(layer.config.data_in), signed_bits(layer.config.weight), layer.accumulator_width()
        lanes, groups = self.in_par * self.out_par, self.out_features // self.out_par
        return {"lut_mult_bits": float(lanes * x * w if dsp_per_product(x, w) == 0 else 0),
                "adder_bits": float(lanes * acc), "acc_mux_bits": float(self.out_par * acc * (groups - 1)),
                "mux_log_bits": float(self.out_par * acc * groups * math.log2(groups)),
                "rom_luts": float(lanes * layer.config.weight.width * math.ceil(self.steps / 64)),
                "cast_bits": float(self.out_par * acc), "out_bits": float(self.out_par * layer.config.data_out.width),
                "result_bits": float(self.out_features * acc)}

    def dsp_count(self) -> int:
        if self.constant is not None:
            return 0
        c = self.layer.config
        if self.steps == 1:
            x = signed_bits(c.data_in)
            return sum(constant_on_dsp(x, code) for code in self.layer.weight_codes().flatten().tolist())
        return dsp_per_product(signed_bits(c.data_in), signed_bits(c.weight)) * self.in_par * self.out_par


def linear_stages(stages: list[Stage]) -> list[LinearStage]:
    """The graph's Linear stages, in order."""
    return [stage for stage in stages if isinstance(stage, LinearStage)]


def _multiplier(table: LayerParallelism, layer: str, fully_parallel: bool) -> str:
    """``lut`` builds constant products from shifts and adds (fully parallel layers only: a
    folded lane's weight changes every cycle); ``auto`` picks it wherever it applies."""
    style = table.multiplier
    if style not in MULTIPLIERS:
        raise ConfigError(f"parallelism.{layer}.multiplier={style!r}; use one of {', '.join(MULTIPLIERS)}")
    if style == "lut" and not fully_parallel:
        raise ConfigError(f"parallelism.{layer}.multiplier='lut' needs a fully parallel layer (in_par and out_par "
                          f"'full'): a folded lane's weight changes every cycle; use 'dsp' or 'auto'")
    return "lut" if style == "lut" or (style == "auto" and fully_parallel) else "dsp"


def _pipeline_every(table: LayerParallelism, layer: str) -> int:
    value = table.pipeline_every
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"parallelism.{layer}.pipeline_every={value!r} must be 0 (no registers inside the "
                          f"adder trees) or a positive number of adder levels per register")
    return value


@register_op("linear")
class Linear(Op):
    torch_ops = ("linear",)
    lowers = "Linear"
    has_table = True
    sets_input = True

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        previous, path = ctx.previous(node), owner(node)
        module = ctx.model.get_submodule(path)
        if not isinstance(module, nn.Linear):
            raise ctx.unsupported(node, "linear outside an nn.Linear module")
        ctx.add(FloatLayer("linear", ctx.name_of(path, node), (previous,), copy.deepcopy(module),
                           features=module.out_features), node)

    def build(self, layer: FloatLayer, ctx: Build) -> None:
        inputs = ctx.inputs(layer)
        linear, src = layer.module, ctx.streams[inputs[0]]
        qconfig = ctx.quant[layer.name]
        try:
            qlayer = QuantLinear.from_float(linear, qconfig)
        except ValueError as error:
            raise ConfigError(f"layer {layer.name}: {error}") from None
        ptable = ctx.tables[layer.name]
        in_par = parallelism(src.par if ptable.in_par == "auto" else ptable.in_par, linear.in_features,
                             f"parallelism.{layer.name}.in_par")
        if in_par != src.par:
            raise ConfigError(
                f"parallelism.{layer.name}.in_par={in_par} but the previous layer sends {src.par} "
                f"elements per beat; set it to {src.par} or 'auto' (or change the previous out_par)")
        out_par = parallelism(ptable.out_par, linear.out_features, f"parallelism.{layer.name}.out_par")
        feed = cast_to(ctx, inputs[0], qconfig.data_in, qconfig.rounding, qconfig.overflow, f"{layer.name}_cast_in")
        multiplier = _multiplier(ptable, layer.name, in_par == linear.in_features and out_par == linear.out_features)
        ctx.add(LinearStage(layer.name, qlayer, in_par, out_par, inputs=(feed,), multiplier=multiplier,
                            pipeline_every=_pipeline_every(ptable, layer.name)),
                StreamInfo(qconfig.data_out, out_par, linear.out_features, qconfig.rounding))

    def input_stream(self, layer: FloatLayer, ctx: Build) -> InputStream:
        """The design's input takes the first Linear's input format, and its in_par when it reads the input."""
        qconfig = ctx.quant[layer.name]
        value = ctx.tables[layer.name].in_par if layer.inputs == (INPUT,) else "full"
        features = ctx.layers.input_features or layer.module.in_features
        par = parallelism("full" if value == "auto" else value, features, f"parallelism.{layer.name}.in_par")
        return InputStream(qconfig.data_in, par, features, qconfig.rounding, qconfig.overflow)
