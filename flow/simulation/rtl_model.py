"""An integer model of an emitted design built from its SystemVerilog alone.

It reads the top module's instances (component, parameters, which stream feeds which), the
weight package's literals and the ROM file each folded linear reads (WEIGHTS_FILE), then
computes every output bit pattern the way the component library's RTL does: bit patterns on
the streams, each component reading them by its own SIGNED parameters, the cast lane's working
width, guard and sticky bits, and an accumulator that wraps at ACC_WIDTH. It shares no code with flow's stage objects or ``flow.formats``, so
when it and flow's reference disagree, one of them is wrong, and the simulation says which.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_INSTANCE = re.compile(r"^\s*(\w+)\s*#\((.*?)\)\s*u_(\w+)\s*\((.*?)\);", re.S | re.M)
_PARAM = re.compile(r"\.(\w+)\(([^()]*)\)")
_PORT = re.compile(r"\.([sm]_axis\w*)_tdata\((\w+)_tdata\)")
_LOCALPARAM = re.compile(r"localparam\s+logic\s*\[(\d+):0\]\s*(\w+)\s*=\s*([^;]+);")
_HEX = re.compile(r"(\d+)'h([0-9a-fA-F_]+)")
_OUTPUT = re.compile(r"assign\s+m_axis_tdata\s*=\s*(\w+)_tdata\s*;")
_SEQUENCE = re.compile(r"^// Sequence: (\d+) tokens a sample", re.M)


class RtlModelError(ValueError):
    """The emitted files are not in the shape this model reads."""


@dataclass
class Instance:
    """One component instance of the top: its module, parameters and streams."""

    module: str
    name: str
    params: dict[str, int]  # WEIGHTS_FILE: a string
    sources: list[str]  # the streams feeding s_axis, or s_axis_a and s_axis_b ("s_axis": the top's input)
    sinks: list[str]  # the streams m_axis (or m_axis_a and m_axis_b) drive


def _mask(width: int) -> int:
    return (1 << width) - 1


def _read(pattern: int, width: int, signed: bool) -> int:
    """The integer a ``width``-bit pattern holds, read as two's complement or unsigned."""
    pattern &= _mask(width)
    return pattern - (1 << width) if signed and pattern >> (width - 1) else pattern


def _literal(text: str, constants: dict[str, int]) -> int | str:
    text = text.strip()
    string = re.fullmatch(r'"([^"\\]*)"', text)
    if string:
        return string.group(1)
    if "::" in text:
        name = text.split("::", 1)[1]
        if name not in constants:
            raise RtlModelError(f"constant {name} is not in the weight package")
        return constants[name]
    match = re.fullmatch(r"(\d+)?'([bdh])([0-9a-fA-F_]+)", text)
    if match:
        return int(match.group(3).replace("_", ""), {"b": 2, "d": 10, "h": 16}[match.group(2)])
    return int(text)


def read_package(text: str) -> dict[str, int]:
    """``localparam logic [N:0] NAME = N'hXXXX;`` constants of a package (or ``{A'h.., B'h..}``
    concatenations, most significant first), as integers."""
    constants = {}
    for _, name, value in _LOCALPARAM.findall(text):
        total = 0
        for width, digits in _HEX.findall(value):
            total = (total << int(width)) | int(digits.replace("_", ""), 16)
        constants[name] = total
    return constants


def read_top(text: str, constants: dict[str, int]) -> tuple[list[Instance], str]:
    """The instances of a top module, in order, and the stream that drives its output."""
    instances = []
    for module, params, name, ports in _INSTANCE.findall(text):
        streams = sorted(_PORT.findall(ports))
        sources = [signal for port, signal in streams if port.startswith("s_")]
        sinks = [signal for port, signal in streams if port.startswith("m_")]
        if not sources or not sinks:
            raise RtlModelError(f"instance u_{name} has no s_axis/m_axis stream")
        values = {key: _literal(value, constants) for key, value in _PARAM.findall(params)}
        instances.append(Instance(module, name, values, sources, sinks))
    output = _OUTPUT.search(text)
    if not instances or output is None:
        raise RtlModelError("the top holds no component instances or no output assignment")
    return instances, output.group(1)


def cast_lane(pattern: int, p: dict[str, int]) -> int:
    """fixed_cast_lane on one bit pattern, in the RTL's working width EXT_W."""
    in_w, out_w = p["IN_WIDTH"], p["OUT_WIDTH"]
    shift = p["IN_FRAC"] - p["OUT_FRAC"]
    rshift, lshift = max(shift, 0), max(-shift, 0)
    ext_w = max(in_w + 1 + lshift, rshift + 2, out_w + 2)
    wrap = lambda v: _read(v, ext_w, True)  # noqa: E731  every signal is EXT_W bits, signed
    extended = _read(pattern, in_w, bool(p["IN_SIGNED"]))
    if rshift == 0:
        rounded = wrap(extended << lshift)
    else:
        scaled = extended >> rshift
        guard = (extended >> (rshift - 1)) & 1
        sticky = int(rshift > 1 and extended & _mask(rshift - 1) != 0)
        rounding = p.get("ROUNDING", 1)
        up = guard if rounding == 1 else (guard & (sticky | ((extended >> rshift) & 1)) if rounding == 2 else 0)
        rounded = wrap(scaled + up)
    hi = (1 << (out_w - 1)) - 1 if p["OUT_SIGNED"] else (1 << out_w) - 1
    lo = -(1 << (out_w - 1)) if p["OUT_SIGNED"] else 0
    if p.get("OVERFLOW", 0) != 1:
        rounded = min(max(rounded, lo), hi)
    return rounded & _mask(out_w)


def read_memory(path: Path, words: int, bits: int) -> list[int]:
    """The words of a ``$readmemh`` file as linear.sv loads it: hex words separated by white
    space, ``//`` comments allowed; exactly ``words`` of at most ``bits`` bits each."""
    text = re.sub(r"//[^\n]*", "", path.read_text())
    tokens = text.split()
    if any(token.startswith("@") for token in tokens):
        raise RtlModelError(f"{path.name}: addresses (@) are not in the shape this model reads")
    values = [int(token.replace("_", ""), 16) for token in tokens]
    if len(values) != words or any(v >> bits for v in values):
        raise RtlModelError(f"{path.name}: {len(values)} words, expected {words} of {bits} bits")
    return values


def _linear_weights(p: dict[str, int], folder: Path) -> dict[str, int]:
    """A folded linear's parameters plus WEIGHT_PATTERNS (weight (o, i) at o*IN_FEATURES + i) from
    the ROM file it reads: word s = beat*OUT_GROUPS + group, lane lo*IN_PAR + li holds weight
    (group*OUT_PAR + lo, beat*IN_PAR + li); a relative WEIGHTS_FILE names a file of ``folder``."""
    n_in, n_out, in_par, out_par, w_w = (p["IN_FEATURES"], p["OUT_FEATURES"], p["IN_PAR"], p["OUT_PAR"],
                                         p["W_WIDTH"])
    groups, beats = n_out // out_par, n_in // in_par
    path = Path(p["WEIGHTS_FILE"]) if Path(p["WEIGHTS_FILE"]).is_absolute() else folder / p["WEIGHTS_FILE"]
    words = read_memory(path, groups * beats, in_par * out_par * w_w)
    patterns = [(words[(i // in_par) * groups + o // out_par] >> (((o % out_par) * in_par + i % in_par) * w_w))
                & _mask(w_w) for o in range(n_out) for i in range(n_in)]
    return {**p, "WEIGHT_PATTERNS": patterns}


def _linear(vector: list[int], p: dict[str, int]) -> list[int]:
    n_in, n_out, w_w, acc_w = p["IN_FEATURES"], p["OUT_FEATURES"], p["W_WIDTH"], p["ACC_WIDTH"]
    if len(vector) != n_in:
        raise RtlModelError(f"linear expects {n_in} elements, the stream carries {len(vector)}")
    x = [_read(v, p["IN_WIDTH"], bool(p["IN_SIGNED"])) for v in vector]
    w_signed = bool(p.get("W_SIGNED", 1))
    patterns = p.get("WEIGHT_PATTERNS")  # a folded linear's, from its ROM file
    weights = p.get("WEIGHTS", 0)
    cast = dict(IN_WIDTH=acc_w, IN_FRAC=p["IN_FRAC"] + p["W_FRAC"], IN_SIGNED=1, OUT_WIDTH=p["OUT_WIDTH"],
                OUT_FRAC=p["OUT_FRAC"], OUT_SIGNED=p["OUT_SIGNED"], ROUNDING=p["ROUNDING"],
                OVERFLOW=p["OVERFLOW"])
    out = []
    for o in range(n_out):
        total = _read(p["BIAS"] >> (o * acc_w), acc_w, True)
        for i in range(n_in):
            pattern = patterns[o * n_in + i] if patterns is not None else weights >> ((o * n_in + i) * w_w)
            w = _read(pattern, w_w, w_signed)
            total += x[i] * w
        out.append(cast_lane(_read(total, acc_w, True), cast))  # the accumulator wraps at ACC_WIDTH
    return out


def _add(a: list[int], b: list[int], p: dict[str, int]) -> list[int]:
    """add.sv per lane: both operands shifted left to the common frac, summed, then one cast."""
    frac = max(p["A_FRAC"], p["B_FRAC"])
    widths = [p[f"{s}_WIDTH"] + frac - p[f"{s}_FRAC"] + (0 if p[f"{s}_SIGNED"] else 1) for s in "AB"]
    sum_width = max(widths) + 1
    cast = dict(IN_WIDTH=sum_width, IN_FRAC=frac, IN_SIGNED=1, OUT_WIDTH=p["OUT_WIDTH"], OUT_FRAC=p["OUT_FRAC"],
                OUT_SIGNED=p["OUT_SIGNED"], ROUNDING=p["ROUNDING"], OVERFLOW=p["OVERFLOW"])
    out = []
    for x, y in zip(a, b):
        total = ((_read(x, p["A_WIDTH"], bool(p["A_SIGNED"])) << (frac - p["A_FRAC"]))
                 + (_read(y, p["B_WIDTH"], bool(p["B_SIGNED"])) << (frac - p["B_FRAC"])))
        out.append(cast_lane(total & _mask(sum_width), cast))
    return out


def _concat_lockstep(a: list[int], b: list[int], p: dict[str, int]) -> list[int]:
    """concat_lockstep.sv: one output beat {b, a}, a's A_ELEMENTS elements first (least significant)."""
    if (len(a), len(b)) != (p["A_ELEMENTS"], p["B_ELEMENTS"]):
        raise RtlModelError(f"concat_lockstep takes {p['A_ELEMENTS']} + {p['B_ELEMENTS']} elements, "
                            f"the streams carry {len(a)} + {len(b)}")
    return [v & _mask(p["WIDTH"]) for v in a + b]


def _negative(v: int, p: dict[str, int]) -> bool:
    return bool(p.get("SIGNED", 1)) and (v >> (p["WIDTH"] - 1)) & 1


def _relu(vector: list[int], p: dict[str, int]) -> list[int]:
    return [0 if _negative(v, p) else v & _mask(p["WIDTH"]) for v in vector]


def _leaky_relu(vector: list[int], p: dict[str, int]) -> list[int]:
    width = p["WIDTH"]
    scale = dict(IN_WIDTH=width, IN_FRAC=p["SHIFT"], IN_SIGNED=1, OUT_WIDTH=width, OUT_FRAC=0,
                 OUT_SIGNED=1, ROUNDING=p.get("ROUNDING", 1), OVERFLOW=0)
    return [cast_lane(v, scale) if _negative(v, p) else v & _mask(width) for v in vector]


def _absolute(vector: list[int], p: dict[str, int]) -> list[int]:
    """absolute.sv: a negative code negated in WIDTH bits, the most negative one saturated to the largest."""
    width = p["WIDTH"]
    most_negative = 1 << (width - 1)
    return [v & _mask(width) if not _negative(v, p) else most_negative - 1 if v & _mask(width) == most_negative
            else -v & _mask(width) for v in vector]


def _clog2(value: int) -> int:
    return (value - 1).bit_length() if value > 1 else 0


def _gelu(vector: list[int], p: dict[str, int]) -> list[int]:
    """gelu.sv per lane: t = min(|x|, CLIP) - CLIP, factor = 2**ERF_FRAC +- (HALF_A t t + 2**ERF_FRAC)
    by the sign of x, then x factor cast (half up, saturate) from frac IN_FRAC + ERF_FRAC + 1."""
    in_w, clip, one = p["IN_WIDTH"], p["CLIP"], 1 << p["ERF_FRAC"]
    poly_w = 2 * (_clog2(clip + 1) + 1) + _clog2(-p["HALF_A"] + 1) + 1
    y_w = in_w + max(poly_w, p["ERF_FRAC"] + 3, in_w + 1) + 1
    cast = dict(IN_WIDTH=y_w, IN_FRAC=p["IN_FRAC"] + p["ERF_FRAC"] + 1, IN_SIGNED=1, OUT_WIDTH=p["OUT_WIDTH"],
                OUT_FRAC=p["OUT_FRAC"], OUT_SIGNED=1, ROUNDING=1, OVERFLOW=0)
    out = []
    for pattern in vector:
        x = _read(pattern, in_w, True)
        t = min(abs(x), clip) - clip
        magnitude = p["HALF_A"] * t * t + one
        factor = one - magnitude if x < 0 else one + magnitude
        out.append(cast_lane((x * factor) & _mask(y_w), cast))
    return out


def _softmax(vector: list[int], p: dict[str, int]) -> list[int]:
    """softmax.sv on one row: n = (max - x) << WORK_SHIFT, z = (n MAGIC) >> MAGIC_SHIFT, t = EXP_B -
    (n - z LN2) in B_W bits, poly = EXP_A t t + (EXP_C << C_SHIFT), e = poly >> (z + POLY_SHIFT)
    rounded half up (0 past the polynomial's width), q = floor(2**RECIP_BITS / sum e), then
    (e q + half) >> (EXP_FRAC + GUARD) in OUT_FRAC + 1 bits."""
    x = [_read(v, p["IN_WIDTH"], True) for v in vector]
    if len(x) != p["LENGTH"]:
        raise RtlModelError(f"softmax expects rows of {p['LENGTH']}, the stream carries {len(x)}")
    b_w = _clog2(p["EXP_B"] + 1)
    poly_w = max(_clog2(p["EXP_A"] + 1) + 2 * b_w, _clog2(p["EXP_C"] + 1) + p["C_SHIFT"]) + 1
    exp_w, top = p["EXP_FRAC"] + 2, max(x)
    exps = []
    for value in x:
        n = (top - value) << p["WORK_SHIFT"]
        z = (n * p["MAGIC"]) >> p["MAGIC_SHIFT"]
        t = (p["EXP_B"] - (n - z * p["LN2"])) & _mask(b_w)
        poly = (p["EXP_A"] * t * t + (p["EXP_C"] << p["C_SHIFT"])) & _mask(poly_w)
        shift = z + p["POLY_SHIFT"]
        if z > poly_w or shift > poly_w:
            e = 0
        else:
            e = poly if shift == 0 else (poly + (1 << (shift - 1))) >> shift
        exps.append(e & _mask(exp_w))
    total = sum(exps)
    recip_bits = p["EXP_FRAC"] + p["OUT_FRAC"] + p["GUARD"]
    quotient = (1 << recip_bits) // total if total else 0
    shift = p["EXP_FRAC"] + p["GUARD"]
    return [((e * quotient + (1 << (shift - 1))) >> shift) & _mask(p["OUT_FRAC"] + 1) for e in exps]


def _isqrt(value: int) -> int:
    """floor(sqrt(value)) by Newton's method on integers (the RTL's digit recurrence gives the same)."""
    if value < 2:
        return value
    root = 1 << ((value.bit_length() + 1) // 2)
    while True:
        better = (root + value // root) // 2
        if better >= root:
            return root
        root = better


def _layer_norm(vector: list[int], p: dict[str, int]) -> list[int]:
    """layer_norm.sv on one row: S, Q; V = N Q - S**2 + EPS; root = isqrt(V 4**ROOT_FRAC) in
    ROOT_STEPS bits; r = floor(2**(NORM_FRAC + ROOT_FRAC + GUARD) / root); per element
    n = ((N x - S) r + 2**(GUARD-1)) >> GUARD, w n + (b << NORM_FRAC), one cast (half up, saturate)."""
    n, steps = p["LENGTH"], p["ROOT_STEPS"]
    x = [_read(v, p["IN_WIDTH"], True) for v in vector]
    if len(x) != n:
        raise RtlModelError(f"layer_norm expects rows of {n}, the stream carries {len(x)}")
    total, squares = sum(x), sum(v * v for v in x)
    radicand = ((n * squares - total * total + p["EPS"]) << (2 * p["ROOT_FRAC"])) & _mask(2 * steps)
    root = _isqrt(radicand) & _mask(steps)
    quotient = (1 << (p["NORM_FRAC"] + p["ROOT_FRAC"] + p["GUARD"])) // root if root else 0
    n_bits = _clog2(n + 1)
    norm_w = p["NORM_FRAC"] + n_bits + 3
    affine_w = p["AFF_WIDTH"] + norm_w + 1
    cast = dict(IN_WIDTH=affine_w, IN_FRAC=p["AFF_FRAC"] + p["NORM_FRAC"], IN_SIGNED=1, OUT_WIDTH=p["OUT_WIDTH"],
                OUT_FRAC=p["OUT_FRAC"], OUT_SIGNED=1, ROUNDING=1, OVERFLOW=0)
    out = []
    for index, value in enumerate(x):
        normalized = _read(((n * value - total) * quotient + (1 << (p["GUARD"] - 1))) >> p["GUARD"], norm_w, True)
        weight = _read(p["WEIGHTS"] >> (index * p["AFF_WIDTH"]), p["AFF_WIDTH"], True)
        bias = _read(p["BIASES"] >> (index * p["AFF_WIDTH"]), p["AFF_WIDTH"], True)
        out.append(cast_lane((weight * normalized + (bias << p["NORM_FRAC"])) & _mask(affine_w), cast))
    return out


def _matmul(a: list[int], b: list[int], p: dict[str, int]) -> list[int]:
    """matmul.sv: B's stream buffered (row-major B, or row-major Bᵀ when B_TRANSPOSED), then each
    row of A times B in lanes that sign- or zero-extend both patterns to ACC_WIDTH and add their
    products modulo 2**ACC_WIDTH, each sum cast from IN_FRAC by fixed_cast_lane."""
    rows, inner, cols, acc_w = p["ROWS"], p["INNER"], p["COLS"], p["ACC_WIDTH"]
    if len(a) != rows * inner or len(b) != inner * cols:
        raise RtlModelError(f"matmul {rows}x{inner} by {inner}x{cols} got {len(a)} and {len(b)} elements")
    x = [_read(v, p["A_WIDTH"], bool(p["A_SIGNED"])) for v in a]
    w = [_read(v, p["B_WIDTH"], bool(p["B_SIGNED"])) for v in b]
    element = (lambda k, n: w[n * inner + k]) if p["B_TRANSPOSED"] else (lambda k, n: w[k * cols + n])
    cast = {"IN_WIDTH": acc_w, "IN_FRAC": p["IN_FRAC"], "IN_SIGNED": 1, "OUT_WIDTH": p["OUT_WIDTH"],
            "OUT_FRAC": p["OUT_FRAC"], "OUT_SIGNED": p["OUT_SIGNED"], "ROUNDING": p["ROUNDING"],
            "OVERFLOW": p["OVERFLOW"]}
    return [cast_lane(sum(x[r * inner + k] * element(k, n) for k in range(inner)) & _mask(acc_w), cast)
            for r in range(rows) for n in range(cols)]


def _tanh(vector: list[int], p: dict[str, int]) -> list[int]:
    """tanh.sv per lane: the exp of n = 2|x| << WORK_SHIFT and of n = 0 as softmax.sv's lanes take
    them, d = e0 + e, q by its restoring divider (from the remainder 2**(EXP_FRAC-1), OUT_FRAC +
    GUARD + 1 steps of shifting in a 0), num = e0 (x >= 0) or e, s = (num q + half) >> (EXP_FRAC +
    GUARD) in OUT_FRAC + 2 bits, y = 2 s - 2**OUT_FRAC there."""
    b_w = _clog2(p["EXP_B"] + 1)
    poly_w = max(_clog2(p["EXP_A"] + 1) + 2 * b_w, _clog2(p["EXP_C"] + 1) + p["C_SHIFT"]) + 1
    exp_w, out_w = p["EXP_FRAC"] + 2, p["OUT_FRAC"] + 2

    def exp_of(n: int) -> int:
        z = (n * p["MAGIC"]) >> p["MAGIC_SHIFT"]
        t = (p["EXP_B"] - (n - z * p["LN2"])) & _mask(b_w)
        poly = (p["EXP_A"] * t * t + (p["EXP_C"] << p["C_SHIFT"])) & _mask(poly_w)
        shift = z + p["POLY_SHIFT"]
        if z > poly_w or shift > poly_w:
            return 0
        return (poly if shift == 0 else (poly + (1 << (shift - 1))) >> shift) & _mask(exp_w)

    sum_w, steps = exp_w + 1, p["OUT_FRAC"] + p["GUARD"] + 1
    shift, e_zero, out = p["EXP_FRAC"] + p["GUARD"], exp_of(0), []
    for pattern in vector:
        x = _read(pattern, p["IN_WIDTH"], True)
        e = exp_of((2 * abs(x)) << p["WORK_SHIFT"])
        divisor, remainder, quotient = (e_zero + e) & _mask(sum_w), 1 << (p["EXP_FRAC"] - 1), 0
        for _ in range(steps):
            trial = remainder << 1
            bit = int(trial >= divisor)
            remainder, quotient = (trial - divisor * bit) & _mask(sum_w), ((quotient << 1) | bit) & _mask(steps)
        half = (((e if x < 0 else e_zero) * quotient + (1 << (shift - 1))) >> shift) & _mask(out_w)
        out.append(((half << 1) - (1 << p["OUT_FRAC"])) & _mask(out_w))
    return out


def _select_token(vector: list[int], p: dict[str, int]) -> list[int]:
    """select_token.sv on one sample: of its TOKENS tokens of BEATS beats, token INDEX's beats."""
    size = len(vector) // p["TOKENS"]
    return list(vector[p["INDEX"] * size:(p["INDEX"] + 1) * size])


# The semantics of each library component, read from its RTL (hw/rtl/<module>.sv): inputs -> output
# elements. Adding a component adds its entry here, written from the RTL, not from flow's reference.
COMPONENTS: dict[str, Callable[..., list[int]]] = {
    "linear": _linear,
    "add": _add,
    "concat": lambda a, b, p: a + b,
    "concat_lockstep": _concat_lockstep,
    "fixed_cast": lambda x, p: [cast_lane(v, p) for v in x],
    "fifo": lambda x, p: list(x),
    "broadcast": lambda x, p: list(x),
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "absolute": _absolute,
    "gelu": _gelu,
    "softmax": _softmax,
    "layer_norm": _layer_norm,
    "matmul": _matmul,
    "tanh": _tanh,
    "select_token": _select_token,
}
WHOLE_SEQUENCE = {"matmul", "select_token"}  # components taking a whole sequence's tokens (the others a token at a time)
ONE_TOKEN = {"select_token"}  # components giving one token a sample (the design after them is per sample)
PASS_ELEMENTS = {"fifo", "broadcast", "concat", "concat_lockstep"}  # compute no element: output_params looks past
ROM_WEIGHTS = {"linear"}  # components reading a WEIGHTS_FILE
# components whose output elements are not OUT_WIDTH/OUT_SIGNED wide: (width, signed) from parameters
OUTPUT_ELEMENTS: dict[str, Callable[[dict[str, int]], tuple[int, bool]]] = {
    "softmax": lambda p: (p["OUT_FRAC"] + 1, False),  # unsigned, one integer bit
    "tanh": lambda p: (p["OUT_FRAC"] + 2, True),  # signed, two integer bits
}


_DECL = re.compile(r"logic\s+(signed\s+)?\[(\d+):0\]\s*(\w+)\s*(?:\[(\d+)\])?\s*;")
_INPUT_LANE = re.compile(r"assign\s+(\w+)\s*=\s*s_axis_tdata\[(\d+):(\d+)\];")
_SUM = re.compile(r"assign\s+(\w+(?:\[\d+\])?)\s*=\s*(.+?);")
_CAST_TERM = re.compile(r"^(\d+)'\((\w+)(?:\[(\d+):0\])?(?:\s*\^\s*(\d+)'(s?)h([0-9a-fA-F]+))?\)(?:\s*<<\s*(\d+))?$")
_BIAS_TERM = re.compile(r"^(\d+)'sd(\d+)$")
_PADDED = re.compile(r"^(.*)\s\|\s\d+'h([0-9a-fA-F]+)$", re.S)
_COPY = re.compile(r"(\w+_r\d+)\s*<=\s*(\w+)\s*;")
_CAST = re.compile(r"fixed_cast_lane\s*#\((.*?)\)\s*u_cast", re.S)


def _strip(term: str) -> str:
    """``term`` without parentheses that enclose all of it."""
    term = term.strip()
    while term.startswith("(") and term.endswith(")"):
        depth = 0
        for index, char in enumerate(term):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and index < len(term) - 1:
                return term
        term = term[1:-1].strip()
    return term


def _terms(expression: str) -> list[tuple[int, str]]:
    """Split ``a - (b) + -(c)`` at top-level + and - into (sign, term), unary minus folded in."""
    terms, depth, sign, start = [], 0, 1, 0
    text = expression.strip()
    for index, char in enumerate(text):
        if char in "()":
            depth += 1 if char == "(" else -1
        elif char in "+-" and depth == 0 and text[start:index].strip() == "" and index >= start:
            sign, start = (-sign if char == "-" else sign), index + 1  # a unary sign
        elif char in "+-" and depth == 0:
            terms.append((sign, text[start:index]))
            sign, start = (-1 if char == "-" else 1), index + 1
    terms.append((sign, text[start:]))
    result = []
    for term_sign, term in terms:
        term = _strip(term)
        while term.startswith("-"):
            term_sign, term = -term_sign, _strip(term[1:])
        result.append((term_sign, term))
    return result


def shift_add_netlist(text: str, vector: list[int]) -> list[int]:
    """A generated constant layer (``*_cmvm``) evaluated as written: every signal wrapped to its
    declared width, registers as copies, then each accumulator through the cast lane."""
    declared = {name: (int(high) + 1, bool(signed)) for signed, high, name, _ in _DECL.findall(text)}
    in_width = int(re.search(r"input\s+(?:wire\s+)?logic\s*\[(\d+):0\]\s*s_axis_tdata", text).group(1)) + 1
    pattern = sum((v & _mask(in_width // len(vector))) << (i * (in_width // len(vector))) for i, v in enumerate(vector))
    values: dict[str, int] = {}
    for name, _high, low in _INPUT_LANE.findall(text):
        values[name] = _read(pattern >> int(low), *declared[name])
    copies = dict(_COPY.findall(text))

    def value(name: str) -> int:
        while name not in values and name in copies:
            name = copies[name]
        return values[name]

    accumulators: dict[int, int] = {}
    for target, expression in _SUM.findall(text):
        if "s_axis_tdata" in expression or target == "s_axis_tready" or target.startswith(("advance", "last_")):
            continue
        total = 0
        for sign, term in _terms(expression):
            bias = _BIAS_TERM.match(term)
            if bias:
                total += sign * int(bias.group(2))
                continue
            padded = _PADDED.match(term)
            pad = 0
            if padded:  # (x | w'h<ones>): ones above the pattern, no bit in common with it
                term, pad = _strip(padded.group(1)), int(padded.group(2), 16)
            cast = _CAST_TERM.match(term)
            if cast is None:
                raise RtlModelError(f"cannot read the netlist term {term!r} of {target}")
            width, source, top, mask_width, mask_signed, mask, shift = cast.groups()
            if top is not None:  # the low bits of a wider source: a part-select is unsigned
                low = value(source) & _mask(int(top) + 1)
                operand = low ^ int(mask, 16) if mask_width else low
                if mask_signed:
                    operand = _read(operand, int(mask_width), True)
                operand = _read(operand, int(width), bool(mask_signed))
            elif mask_width:  # x ^ w'h..: a w-bit pattern, unsigned (zero-extended) unless the literal is 'sh
                pattern = (value(source) & _mask(int(mask_width))) ^ int(mask, 16)
                operand = _read(_read(pattern, int(mask_width), bool(mask_signed)), int(width), bool(mask_signed))
            else:  # the cast extends by the source's own signedness
                operand = _read(value(source), int(width), declared[source][1])
            total += sign * ((operand << int(shift or 0)) + pad)
        if target.startswith("acc["):
            accumulators[int(target[4:-1])] = total
        else:
            values[target] = _read(total, *declared[target])
    acc_width = declared["acc"][0]
    cast = {key: int(v) for key, v in _PARAM.findall(_CAST.search(text).group(1))}
    return [cast_lane(_read(accumulators[o], acc_width, True) & _mask(acc_width), cast)
            for o in range(len(accumulators))]


class RtlModel:
    """The emitted design of a folder as integer functions of input bit patterns."""

    def __init__(self, rtl_folder: Path, top: str) -> None:
        rtl_folder = Path(rtl_folder)
        constants: dict[str, int] = {}
        for path in sorted(rtl_folder.glob("*_pkg.sv")):
            constants.update(read_package(path.read_text()))
        self.netlists = {path.stem: path.read_text() for path in rtl_folder.glob("*_cmvm.sv")}
        text = (rtl_folder / f"{top}.sv").read_text()
        self.instances, self.output = read_top(text, constants)
        sequence = _SEQUENCE.search(text)  # a sequence design streams a sample's tokens one after another
        self.sequence = int(sequence.group(1)) if sequence else 1
        for inst in self.instances:
            if inst.module in ROM_WEIGHTS and "WEIGHTS_FILE" in inst.params:
                inst.params = _linear_weights(inst.params, rtl_folder)

    def output_params(self) -> tuple[int, bool]:
        """Width and signedness of the top's output elements, from the component computing them
        (FIFOs, forks and concatenations pass elements through)."""
        stream = self.output
        while True:
            producer = next((i for i in self.instances if stream in i.sinks), None)
            if producer is None:
                raise RtlModelError(f"nothing computes the elements of {stream}")
            if producer.module not in PASS_ELEMENTS:
                break
            stream = producer.sources[0]
        p = producer.params
        if producer.module in self.netlists:
            p = {key: int(v) for key, v in _PARAM.findall(_CAST.search(self.netlists[producer.module]).group(1))}
        if producer.module in OUTPUT_ELEMENTS:
            return OUTPUT_ELEMENTS[producer.module](p)
        return ((p["OUT_WIDTH"], bool(p.get("OUT_SIGNED", 1))) if "OUT_WIDTH" in p
                else (p["WIDTH"], bool(p.get("SIGNED", 1))))

    def __call__(self, vector: list[int]) -> list[int]:
        """Output codes (read by the output's signedness) for one vector of input codes (a sample: in
        a sequence design its tokens one after another)."""
        streams = {"s_axis": list(vector)}
        tokens = {"s_axis": self.sequence}  # tokens a sample on each stream
        for inst in self.instances:
            missing = [source for source in inst.sources if source not in streams]
            if missing:
                raise RtlModelError(f"instance u_{inst.name} reads {missing[0]}, which nothing drives before it")
            data = [streams[source] for source in inst.sources]
            if inst.module in self.netlists:
                compute = lambda *x, text=self.netlists[inst.module]: shift_add_netlist(text, x[0])  # noqa: E731
            elif inst.module in COMPONENTS:
                compute = lambda *x, f=COMPONENTS[inst.module], p=inst.params: f(*x, p)  # noqa: E731
            else:
                raise RtlModelError(f"the model does not know component {inst.module!r}")
            count = tokens[inst.sources[0]]
            if count == 1 or inst.module in WHOLE_SEQUENCE:
                result = compute(*data)
            else:  # one token at a time
                result = []
                for token in range(count):
                    result += compute(*(x[token * len(x) // count:(token + 1) * len(x) // count] for x in data))
            for sink in inst.sinks:
                streams[sink] = result
                tokens[sink] = 1 if inst.module in ONE_TOKEN else count
        width, signed = self.output_params()
        return [_read(v, width, signed) for v in streams[self.output]]
