"""An independent oracle for the numeric contract, written with exact rationals."""
from __future__ import annotations

import math
from fractions import Fraction


def round_rational(v: Fraction, rounding: str) -> int:
    """Round an exact rational to an integer with the named mode."""
    fl = math.floor(v)
    rem = v - fl
    if rounding == "floor":
        return fl
    if rounding == "half_up":
        return fl + (1 if rem >= Fraction(1, 2) else 0)
    if rounding == "half_even":
        if rem > Fraction(1, 2):
            return fl + 1
        if rem < Fraction(1, 2):
            return fl
        return fl if fl % 2 == 0 else fl + 1
    raise ValueError(rounding)


def fit(code: int, width: int, signed: bool, overflow: str) -> int:
    """Saturate or wrap an integer into a width."""
    lo, hi = (-(2 ** (width - 1)), 2 ** (width - 1) - 1) if signed else (0, 2**width - 1)
    if overflow == "saturate":
        return min(max(code, lo), hi)
    m = code % 2**width
    return m - 2**width if signed and m > hi else m


def quantize_value(v: Fraction, width: int, frac: int, signed: bool, rounding: str, overflow: str) -> int:
    """The code of value v in Fixed(width, frac, signed)."""
    return fit(round_rational(v * Fraction(2) ** frac, rounding), width, signed, overflow)


def cast_code(code: int, from_frac: int, width: int, frac: int, signed: bool, rounding: str, overflow: str) -> int:
    """Cast a code at frac from_frac to Fixed(width, frac, signed)."""
    return quantize_value(Fraction(code) / Fraction(2) ** from_frac, width, frac, signed, rounding, overflow)
