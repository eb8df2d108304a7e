"""One description per component of hw/rtl: the library modules it instantiates, its parameters
built from typed arguments, and its cycle model. Emission, the hardware graph's cycle model,
the component regressions, the lint/Yosys checks and the benches all read it from here.

The exact Python reference of each component is the ``forward_codes`` of its flow.nn module or
flow.formats cast (named in ``reference``).
"""
from __future__ import annotations

from dataclasses import dataclass

from flow.arith.exp import DEFAULT_COEF_FRAC as DEFAULT_EXP_COEF_FRAC
from flow.arith.exp import exp_constants
from flow.arith.gelu import DEFAULT_COEF_FRAC as DEFAULT_GELU_COEF_FRAC
from flow.arith.gelu import gelu_constants
from flow.arith.layer_norm import DEFAULT_NORM_GUARD, layer_norm_constants
from flow.arith.softmax import DEFAULT_GUARD as DEFAULT_SOFTMAX_GUARD
from flow.circuits.packing import pack_codes, sv_literal
from flow.formats.base import Format, Overflow, Rounding
from flow.nn import QuantLayerNorm, QuantLinear, QuantMatmul


@dataclass(frozen=True)
class Component:
    """A module of the library: what it instantiates (compiled first) and where its reference is."""

    name: str
    uses: tuple[str, ...]
    reference: str


LIBRARY: dict[str, Component] = {c.name: c for c in [
    Component("skid_buffer", (), "identity"),
    Component("fixed_cast_lane", (), "flow.formats.fixed.cast_codes"),
    Component("reciprocal", (), "flow.arith.roots.reciprocal_floor"),
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
    Component("softmax", ("reciprocal",), "flow.nn.QuantSoftmax.forward_codes"),
    Component("layer_norm", ("reciprocal", "fixed_cast_lane"), "flow.nn.QuantLayerNorm.forward_codes"),
    Component("matmul", ("fixed_cast_lane",), "flow.nn.QuantMatmul.forward_codes"),
    Component("tanh", ("skid_buffer",), "flow.nn.QuantTanh.forward_codes"),
    Component("select_token", ("skid_buffer",), "flow.ops.select_token.SelectTokenStage.forward_codes"),
    Component("key_mask", ("skid_buffer",), "flow.ops.key_mask.key_mask_codes"),
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


MAX_RTL_BITS = 62  # the widest product the transformer components take ($error above it)


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


def key_mask_cycles(seq: int, rows: int, par: int) -> tuple[int, int]:
    """(cycles per sample, latency): a scores beat a cycle once the sample's mask is in (the next
    sample's mask loads meanwhile), or the mask's ``seq`` one-bit beats where they take longer."""
    return max(rows * seq // par, seq), 1


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
    product_bits = gelu_product_bits(in_fmt.width, constants.erf_frac, constants.clip, constants.half_a)
    if product_bits > MAX_RTL_BITS:
        raise ValueError(f"GELU of {in_fmt} needs a {product_bits}-bit product x (1 + erf) in gelu.sv, over "
                         f"{MAX_RTL_BITS} bits; narrow the input format or lower its frac")
    return {"PAR": par, "IN_WIDTH": in_fmt.width, "IN_FRAC": in_fmt.frac, "OUT_WIDTH": out_fmt.width,
            "OUT_FRAC": out_fmt.frac, "ERF_FRAC": constants.erf_frac, "CLIP": constants.clip,
            "HALF_A": constants.half_a}


def _clog2(value: int) -> int:
    """SystemVerilog's $clog2."""
    return (value - 1).bit_length() if value > 1 else 0


def gelu_product_bits(in_width: int, erf_frac: int, clip: int, half_a: int) -> int:
    """Bits of gelu.sv's x (2**ERF_FRAC + erf) (its localparam Y_W)."""
    poly = 2 * (_clog2(clip + 1) + 1) + _clog2(-half_a + 1) + 1
    return in_width + max(poly, erf_frac + 3, in_width + 1) + 1


def softmax_product_bits(parameters: dict[str, int]) -> int:
    """Bits of softmax.sv's widest product (the larger of its localparams Z_W, POLY_W and PROD_W)."""
    p = parameters
    n_bits = p["IN_WIDTH"] + 1 + p["WORK_SHIFT"]
    z_bits = n_bits + _clog2(p["MAGIC"] + 1)
    square = _clog2(p["EXP_A"] + 1) + 2 * _clog2(p["EXP_B"] + 1)
    poly_bits = max(square, _clog2(p["EXP_C"] + 1) + p["C_SHIFT"]) + 1
    prod_bits = p["EXP_FRAC"] + 2 + p["EXP_FRAC"] + p["OUT_FRAC"] + p["GUARD"] + 1
    return max(z_bits, poly_bits, prod_bits)


def softmax_parameters(in_fmt: Format, out_frac: int, length: int, par: int, exp_frac: int | None = None,
                       guard: int = DEFAULT_SOFTMAX_GUARD, coef_frac: int = DEFAULT_EXP_COEF_FRAC) -> dict[str, int]:
    """softmax.sv's parameters: flow.arith.int_softmax's constants, and the multiply that equals the
    floor division by ln 2 over the whole input range (n < 2**N: M = ceil(2**(N + b) / d), b = bits of d)."""
    if par < 1 or length % par:
        raise ValueError(f"softmax over rows of {length}: parallelism {par} does not divide the row length; "
                         f"pick a parallelism that divides {length}")
    exp_frac = out_frac + guard if exp_frac is None else exp_frac
    k = exp_constants(in_fmt.frac, coef_frac)
    n_bits = in_fmt.width + 1 + k.work_frac - in_fmt.frac
    magic_shift = n_bits + k.ln2.bit_length()
    parameters = {"LENGTH": length, "PAR": par, "IN_WIDTH": in_fmt.width, "OUT_FRAC": out_frac,
                  "EXP_FRAC": exp_frac, "GUARD": guard, "WORK_SHIFT": k.work_frac - in_fmt.frac, "LN2": k.ln2,
                  "MAGIC": -(-(1 << magic_shift) // k.ln2), "MAGIC_SHIFT": magic_shift, "EXP_A": k.a, "EXP_B": k.b,
                  "EXP_C": k.c, "C_SHIFT": k.work_frac, "POLY_SHIFT": k.poly_frac - exp_frac}
    if softmax_product_bits(parameters) > MAX_RTL_BITS:
        raise ValueError(f"softmax of {in_fmt} at output frac {out_frac} needs a {softmax_product_bits(parameters)}-bit "
                         f"product in softmax.sv, over {MAX_RTL_BITS} bits; narrow the input or lower the output frac")
    return parameters


def softmax_cycles(length: int, par: int, parameters: dict[str, int]) -> tuple[int, int]:
    """(cycles per row, latency) of softmax.sv: load, exp and emit a beat per cycle, one quotient
    bit per cycle between them, one row at a time."""
    beats = length // par
    divide = parameters["EXP_FRAC"] + parameters["OUT_FRAC"] + parameters["GUARD"] + 1
    return 3 * beats + divide, 2 * beats + divide


def tanh_parameters(in_fmt: Format, out_frac: int, par: int) -> dict[str, int]:
    """tanh.sv's parameters: softmax.sv's (flow.arith.int_softmax's constants for the pair (x, -x))
    without the row length."""
    try:
        parameters = softmax_parameters(in_fmt, out_frac, 2, 1)
    except ValueError as error:
        raise ValueError(str(error).replace("softmax", "tanh")) from None
    del parameters["LENGTH"]
    return {**parameters, "PAR": par}


def tanh_cycles(parameters: dict[str, int]) -> tuple[int, int]:
    """(cycles per beat, latency) of tanh.sv: a beat a cycle through its exp register, one pipeline
    stage per quotient bit it computes (OUT_FRAC + GUARD + 1: the first EXP_FRAC are 0) and the
    output skid buffer."""
    return 1, parameters["OUT_FRAC"] + parameters["GUARD"] + 3


def select_token_parameters(beat_bits: int, beats: int, tokens: int, index: int) -> dict[str, int]:
    """select_token.sv's parameters: a beat's bits, a token's beats, a sample's tokens, the token kept."""
    if not 0 <= index < tokens:
        raise ValueError(f"token index {index} is outside a sequence of {tokens} tokens")
    return {"WIDTH": beat_bits, "BEATS": beats, "TOKENS": tokens, "INDEX": index}


def layer_norm_parameters(norm: QuantLayerNorm, par: int) -> dict[str, int | str]:
    """layer_norm.sv's parameters: the formats, flow.arith.int_layer_norm's constants, the affine
    codes packed as parameters, and the square root's steps (half the largest radicand's bits)."""
    features, in_fmt, out_fmt, affine_fmt = norm.features, norm.in_fmt, norm.out_fmt, norm.affine_fmt
    if par < 1 or features % par:
        raise ValueError(f"LayerNorm over {features} features: parallelism {par} does not divide the row length; "
                         f"pick a parallelism that divides {features}")
    if not (in_fmt.signed and out_fmt.signed and affine_fmt.signed):
        raise ValueError("layer_norm.sv takes signed input, output and affine formats; make them signed")
    k = layer_norm_constants(features, in_fmt, out_fmt.frac + DEFAULT_NORM_GUARD, norm.eps)
    if k.eps >= 1 << 31:
        raise ValueError(f"LayerNorm eps {norm.eps} is {k.eps} codes, over a 32-bit parameter; lower eps or the "
                         "input frac")
    largest_radicand = (features ** 2 * 4 ** (in_fmt.width - 1) + k.eps) << (2 * k.root_frac)
    return {"LENGTH": features, "PAR": par, "IN_WIDTH": in_fmt.width, "OUT_WIDTH": out_fmt.width,
            "OUT_FRAC": out_fmt.frac, "AFF_WIDTH": affine_fmt.width, "AFF_FRAC": affine_fmt.frac,
            "NORM_FRAC": k.norm_frac, "GUARD": k.guard, "ROOT_FRAC": k.root_frac, "EPS": k.eps,
            "ROOT_STEPS": -(-largest_radicand.bit_length() // 2),
            "WEIGHTS": sv_literal(pack_codes(norm.weight_codes().tolist(), affine_fmt.width), features * affine_fmt.width),
            "BIASES": sv_literal(pack_codes(norm.bias_codes().tolist(), affine_fmt.width), features * affine_fmt.width)}


def layer_norm_cycles(features: int, par: int, parameters: dict[str, int | str]) -> tuple[int, int]:
    """(cycles per row, latency) of layer_norm.sv: load and emit a beat per cycle, one setup
    cycle, a root bit and then a reciprocal bit per cycle between them, one row at a time."""
    beats = features // par
    serial = 2 + int(parameters["ROOT_STEPS"]) + int(parameters["NORM_FRAC"]) + int(parameters["ROOT_FRAC"]) \
        + int(parameters["GUARD"])
    return 2 * beats + serial, beats + serial


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


def key_mask_parameters(fmt: Format, seq: int, rows: int, par: int) -> dict[str, int]:
    """``fmt``: the scores format; ``seq`` keys a row (mask bits a sample), ``rows`` rows a sample."""
    return dict(PAR=par, WIDTH=fmt.width, SIGNED=int(fmt.signed), SEQ=seq, ROWS=rows)


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


def matmul_parameters(matmul: QuantMatmul, rows: int, inner: int, cols: int, a_par: int, b_par: int, out_par: int,
                      b_transposed: bool) -> dict[str, int]:
    """matmul.sv's parameters for ``rows`` x ``inner`` by ``inner`` x ``cols`` products; B arrives
    row-major, or transposed (row-major Bᵀ, as K's rows for Q·Kᵀ) when ``b_transposed``, at most
    one element per bank a beat (``b_par`` <= ``a_par`` transposed, else <= ``out_par``)."""
    b_row = inner if b_transposed else cols
    for name, par, length, what in (("A", a_par, inner, "a row of A"), ("B", b_par, b_row, "a row of B's stream"),
                                    ("output", out_par, cols, "a row of C")):
        if par < 1 or length % par:
            raise ValueError(f"matmul {rows}x{inner} by {inner}x{cols}: {name} parallelism {par} does not divide "
                             f"{what} ({length}); pick one that divides {length}")
    bank_lanes, lanes_name = (a_par, "A") if b_transposed else (out_par, "output")
    if b_par > bank_lanes:
        raise ValueError(f"matmul: B parallelism {b_par} exceeds the {lanes_name} parallelism {bank_lanes}, so a beat "
                         f"of B would write one bank twice; use a B parallelism of at most {bank_lanes}")
    return {"ROWS": rows, "INNER": inner, "COLS": cols, "A_PAR": a_par, "B_PAR": b_par, "OUT_PAR": out_par,
            "B_TRANSPOSED": int(b_transposed), "A_WIDTH": matmul.a_fmt.width, "A_SIGNED": int(matmul.a_fmt.signed),
            "B_WIDTH": matmul.b_fmt.width, "B_SIGNED": int(matmul.b_fmt.signed),
            "ACC_WIDTH": matmul.accumulator_width(inner), "IN_FRAC": matmul.acc_frac,
            **matmul.out_fmt.rtl_parameters("OUT"), "ROUNDING": matmul.rounding.rtl_code,
            "OVERFLOW": matmul.overflow.rtl_code}


def matmul_cycles(parameters: dict[str, int]) -> tuple[int, int]:
    """(cycles per product, latency from the first B beat to the first output beat) of matmul.sv:
    B loads a beat per cycle, then each row of A loads and each output group takes STEPS cycles
    and one to leave."""
    p = parameters
    b_beats, a_beats = p["INNER"] * p["COLS"] // p["B_PAR"], p["INNER"] // p["A_PAR"]
    steps, groups = p["INNER"] // p["A_PAR"], p["COLS"] // p["OUT_PAR"]
    return b_beats + p["ROWS"] * (a_beats + groups * (steps + 1)), b_beats + a_beats + steps
