"""One description per component of hw/rtl: the library modules it instantiates, its parameters
built from typed arguments, and its cycle model. Emission, the hardware graph's cycle model,
the component regressions, the lint/Yosys checks and the benches all read it from here.

The exact Python reference of each component is the ``forward_codes`` of its flow.nn module or
flow.formats cast (named in ``reference``).
"""
from __future__ import annotations

from dataclasses import dataclass

from flow.arith.gelu import DEFAULT_COEF_FRAC as DEFAULT_GELU_COEF_FRAC
from flow.arith.gelu import gelu_constants
from flow.formats.base import Format, Overflow, Rounding
from flow.nn import QuantLinear


@dataclass(frozen=True)
class Component:
    """A module of the library: what it instantiates (compiled first) and where its reference is."""

    name: str
    uses: tuple[str, ...]
    reference: str


LIBRARY: dict[str, Component] = {c.name: c for c in [
    Component("skid_buffer", (), "identity"),
    Component("fixed_cast_lane", (), "flow.formats.fixed.cast_codes"),
    Component("fixed_cast", ("skid_buffer", "fixed_cast_lane"), "flow.formats.fixed.cast_codes"),
    Component("relu", ("skid_buffer",), "flow.nn.QuantReLU.forward_codes"),
    Component("leaky_relu", ("skid_buffer", "fixed_cast_lane"), "flow.nn.QuantLeakyReLU.forward_codes"),
    Component("absolute", ("skid_buffer",), "flow.ops.absolute.AbsStage.forward_codes"),
    Component("linear", ("skid_buffer", "fixed_cast_lane"), "flow.nn.QuantLinear.forward_codes"),
    Component("fifo", (), "identity"),
    Component("broadcast", (), "identity on both outputs"),
    Component("add", ("skid_buffer", "fixed_cast_lane"), "flow.nn.QuantAdd.forward_codes"),
    Component("concat", ("skid_buffer",), "flow.nn.Concat.forward_codes"),
    Component("concat_lockstep", ("skid_buffer",), "flow.nn.Concat.forward_codes"),
    Component("gelu", ("skid_buffer", "fixed_cast_lane"), "flow.nn.QuantGELU.forward_codes"),
]}


def compile_order(modules: list[str]) -> list[str]:
    """The library files a set of modules needs, each once, every module after those it uses."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name not in LIBRARY:
            raise KeyError(f"{name!r} is not a component of hw/rtl (known: {', '.join(LIBRARY)})")
        for used in LIBRARY[name].uses:
            visit(used)
        if name not in order:
            order.append(name)

    for module in modules:
        visit(module)
    return order


# ---- cycle models (the regressions and the fuzzer measure them) ----
ELEMENTWISE_CYCLES = (1, 1)  # (II, latency) of fixed_cast, relu, leaky_relu and skid_buffer


def fifo_cycles(depth: int) -> tuple[int, int]:
    """(II in cycles per beat, latency): full throughput needs two entries (ready ignores the output)."""
    return (1 if depth >= 2 else 2), 1


BROADCAST_CYCLES = (1, 0)  # an eager fork: no register, each output takes the beat when it is ready
ADD_CYCLES = (1, 1)


def concat_cycles(a_beats: int, b_beats: int) -> tuple[int, int]:
    """(cycles per vector, latency): the A beats of a vector leave first, then the B beats."""
    return a_beats + b_beats, 1


CONCAT_LOCKSTEP_CYCLES = (1, 1)  # one vector a beat, both inputs taken in the same cycle, as add


def linear_cycles(in_features: int, out_features: int, in_par: int, out_par: int) -> tuple[int, int]:
    """(II, latency): each input beat is held for OUT/OUT_PAR cycles; two cycles to leave."""
    ii = (in_features // in_par) * (out_features // out_par)
    return ii, ii + 2


# ---- parameters ----
def cast_parameters(src: Format, dst: Format, rounding: Rounding, overflow: Overflow, par: int) -> dict[str, int]:
    return dict(PAR=par, **src.rtl_parameters("IN"), **dst.rtl_parameters("OUT"),
                ROUNDING=Rounding(rounding).rtl_code, OVERFLOW=Overflow(overflow).rtl_code)


def relu_parameters(fmt: Format, par: int) -> dict[str, int]:
    p = fmt.rtl_parameters("")
    return dict(PAR=par, WIDTH=p["_WIDTH"], SIGNED=p["_SIGNED"])


def leaky_relu_parameters(fmt: Format, shift: int, rounding: Rounding, par: int) -> dict[str, int]:
    return dict(relu_parameters(fmt, par), SHIFT=shift, ROUNDING=Rounding(rounding).rtl_code)


def gelu_parameters(in_fmt: Format, out_fmt: Format, par: int, coef_frac: int = DEFAULT_GELU_COEF_FRAC) -> dict[str, int]:
    """gelu.sv's parameters: the formats and flow.arith.int_gelu's integer constants."""
    constants = gelu_constants(in_fmt, coef_frac)
    return {"PAR": par, "IN_WIDTH": in_fmt.width, "IN_FRAC": in_fmt.frac, "OUT_WIDTH": out_fmt.width,
            "OUT_FRAC": out_fmt.frac, "ERF_FRAC": constants.erf_frac, "CLIP": constants.clip,
            "HALF_A": constants.half_a}


def fifo_parameters(beat_bits: int, depth: int) -> dict[str, int]:
    return dict(WIDTH=beat_bits, DEPTH=depth)


def broadcast_parameters(beat_bits: int) -> dict[str, int]:
    return dict(WIDTH=beat_bits)


def add_parameters(a: Format, b: Format, out: Format, rounding: Rounding, overflow: Overflow,
                   par: int) -> dict[str, int]:
    return dict(PAR=par, **a.rtl_parameters("A"), **b.rtl_parameters("B"), **out.rtl_parameters("OUT"),
                ROUNDING=Rounding(rounding).rtl_code, OVERFLOW=Overflow(overflow).rtl_code)


def concat_parameters(beat_bits: int, a_beats: int, b_beats: int) -> dict[str, int]:
    return dict(WIDTH=beat_bits, A_BEATS=a_beats, B_BEATS=b_beats)


def concat_lockstep_parameters(width: int, a_elements: int, b_elements: int) -> dict[str, int]:
    """``width``: bits of one element (both inputs carry one format); each input is one beat a vector."""
    return dict(WIDTH=width, A_ELEMENTS=a_elements, B_ELEMENTS=b_elements)


def linear_steps(in_features: int, out_features: int, in_par: int, out_par: int) -> int:
    """Weight words a vector steps through: 1 fully parallel (the weights are one WEIGHTS
    parameter), more when folded (a ROM of that many words, read from WEIGHTS_FILE)."""
    return (in_features // in_par) * (out_features // out_par)


def linear_parameters(layer: QuantLinear, in_par: int, out_par: int, weights: str | None, bias: str,
                      weights_file: str | None = None) -> dict[str, object]:
    """``weights`` and ``bias`` are SystemVerilog expressions (a package constant or a literal);
    a folded layer takes ``weights_file`` instead of ``weights``: the path of its ROM's hex file
    (flow.ops.linear.weights_hex), relative to the simulation's +flow_rtl_dir or absolute."""
    c = layer.config
    folded = linear_steps(layer.in_features, layer.out_features, in_par, out_par) > 1
    if folded and not weights_file:
        raise ValueError(f"a folded linear ({layer.in_features}->{layer.out_features}, par {in_par}x{out_par}) "
                         f"reads its weights from a file: pass weights_file")
    if not folded and weights is None:
        raise ValueError("a fully parallel linear takes its weights as a parameter: pass weights")
    if folded and ('"' in weights_file or "\\" in weights_file):
        raise ValueError(f"weights file path {weights_file!r} holds a quote or backslash")
    return dict(IN_FEATURES=layer.in_features, OUT_FEATURES=layer.out_features, IN_PAR=in_par, OUT_PAR=out_par,
                **c.data_in.rtl_parameters("IN"), **c.weight.rtl_parameters("W"), ACC_WIDTH=layer.accumulator_width(),
                **c.data_out.rtl_parameters("OUT"), ROUNDING=c.rounding.rtl_code, OVERFLOW=c.overflow.rtl_code,
                **({"WEIGHTS_FILE": f'"{weights_file}"'} if folded else {"WEIGHTS": weights}), BIAS=bias)
