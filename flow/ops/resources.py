"""What the analytical estimator's features are built from, shared by the op files: signed
operand bits, Yosys' xc7 DSP48E1 mapping rule (as measured), and a cast lane's rounding and
saturation bits (flow/estimate/model.py fits LUT and FF on the features; see its docstring)."""
from __future__ import annotations

import math
from typing import Any

from flow.formats.base import Overflow, Rounding

DSP_A, DSP_B, DSP_A_MIN, DSP_B_MIN, DSP_Y_MIN = 25, 18, 2, 3, 9  # Yosys' xc7 mul2dsp limits, as measured


def signed_bits(fmt: Any) -> int:
    return fmt.width + (0 if fmt.signed else 1)


def dsp_per_product(x_bits: int, w_bits: int) -> int:
    """DSP48E1 blocks a signed x_bits (data) by w_bits (weight) product takes in Yosys' xc7 mapping
    (0: LUTs): the data operand at least 2 bits, the weight at least 3, the product at least 9
    (measured on the calibration sweep); a 25x18 block."""
    if x_bits < DSP_A_MIN or w_bits < DSP_B_MIN or x_bits + w_bits < DSP_Y_MIN:
        return 0
    return math.ceil(x_bits / DSP_A) * math.ceil(w_bits / DSP_B)


def constant_on_dsp(x_bits: int, code: int) -> int:
    """DSP48E1s a product by the constant ``code`` takes: Yosys drops the constant's trailing zeros
    (a shift) and narrows it to its own bits; +-2**k is a shift alone."""
    odd = abs(code)
    if not odd:
        return 0
    while not odd & 1:
        odd >>= 1
    if odd == 1:
        return 0
    return dsp_per_product(x_bits, bits(-odd if code < 0 else odd, -odd if code < 0 else odd))


def cast_lane_features(src: Any, dst: Any, rounding: Rounding, overflow: Overflow, par: int) -> dict[str, float]:
    """What ``par`` fixed_cast_lanes from ``src`` to ``dst`` grow with: the rounding adder over the
    kept bits, and the saturation compare over the kept bits above the output's."""
    shift = src.frac - dst.frac
    kept = src.width + 1 + max(-shift, 0) - max(shift, 0)
    rounds = shift > 0 and rounding != Rounding.FLOOR
    saturates = overflow == Overflow.SATURATE and kept > dst.width
    return {"round_bits": float(par * kept if rounds else 0),
            "sat_bits": float(par * (kept - dst.width) if saturates else 0),
            "sat_out_bits": float(par * dst.width if saturates else 0)}


def bits(lo: int, hi: int) -> int:
    """Bits of the two's complement signal that holds every value of [lo, hi]."""
    count = 1
    while not (-(1 << (count - 1)) <= lo and hi < (1 << (count - 1))):
        count += 1
    return count


DSP_A_PARTIAL = 18  # xc7: a wide A operand is cut into 17-bit unsigned slices (18 with the sign headroom)


def mul2dsp(a_bits: int, a_signed: bool, b_bits: int, b_signed: bool, y_bits: int) -> int:
    """DSP48E1s Yosys' ``mul2dsp`` (synth_xilinx -family xc7: 25x18, A partial 18, min widths 2, 2
    and a 9-bit product, signed only) maps one ``$mul`` cell to, given the cell's widths after
    ``wreduce``: the wider operand goes on A; an unsigned product gets a sign bit on each operand;
    an operand past 25 (A) or 18 (B) bits is cut into 17-bit slices, each a DSP (recursively); a
    slice whose product starts at or above the cell's ``y_bits`` is dead and removed."""
    def count(a: int, a_s: bool, b: int, b_s: bool, y: int, offset: int, top: bool) -> int:
        if offset >= y_bits:
            return 0
        if top and a < b:
            a, a_s, b, b_s = b, b_s, a, a_s
        if a < 2 or b < 2 or y < DSP_Y_MIN:
            return 0
        if top and not a_s and not b_s:
            a, b, a_s, b_s = a + 1, b + 1, True, True
        step = DSP_A_PARTIAL - 1
        if a > DSP_A:
            n = (a - DSP_A + step - 1) // step
            return (sum(count(DSP_A_PARTIAL, True, b, b_s, min(y, b + DSP_A_PARTIAL), offset + i * step, False)
                        for i in range(n))
                    + count(a - n * step, a_s, b, b_s, b + a - n * step, offset + n * step, False))
        if b > DSP_B:
            n = (b - DSP_B + step - 1) // step
            return (sum(count(a, a_s, DSP_A_PARTIAL, True, min(y, a + DSP_A_PARTIAL), offset + i * step, False)
                        for i in range(n))
                    + count(a, a_s, b - n * step, b_s, a + b - n * step, offset + n * step, False))
        return 1
    return count(a_bits, a_signed, b_bits, b_signed, y_bits, 0, True)


def constant_mul2dsp(x_bits: int, signed: bool, code: int, y_bits: int) -> int:
    """DSP48E1s a product of an x_bits operand by the constant ``code`` takes (``mul2dsp`` above):
    Yosys takes the constant's trailing zeros out as a shift (narrowing the product by as many
    bits) and narrows it to its own bits; an odd part of 1 is a shift alone, no multiplier."""
    odd, zeros = abs(code), 0
    if not odd:
        return 0
    while not odd & 1:
        odd, zeros = odd >> 1, zeros + 1
    if odd == 1:
        return 0
    value = -odd if code < 0 else odd
    width = bits(value, value) if signed else odd.bit_length()
    return mul2dsp(x_bits, signed, width, signed, min(y_bits - zeros, x_bits + width))
