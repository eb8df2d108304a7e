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
