"""An independent Fraction oracle for the non-fixed formats, written from their docstrings'
definitions (not from flow's code), and checks of the oracle itself against known tables.

Every sign-symmetric format is a sorted list of magnitudes, each with a flag saying whether its
code is "even" (the tie-breaking rule of half_even); rounding picks between the two magnitudes
around |v| with the mode applied to the signed value, and saturates at the largest magnitude.
"""
from __future__ import annotations

from bisect import bisect_right
from fractions import Fraction

from tests.fraction_oracle import round_rational

Magnitudes = list[tuple[Fraction, bool]]  # ascending (magnitude, code is even), starting at 0
TWO = Fraction(2)
FLOAT32_MAX = (2 - TWO**-23) * TWO**127


def floor_log2(v: Fraction) -> int:
    """floor(log2(v)) for v > 0, exactly."""
    e = v.numerator.bit_length() - v.denominator.bit_length()
    while TWO**e > v:
        e -= 1
    while TWO ** (e + 1) <= v:
        e += 1
    return e


def minifloat_magnitudes(E: int, M: int, bias: int, ieee_like: bool, nan_pattern: bool) -> Magnitudes:
    """Field 0: m/2**M * 2**(1-bias); field f >= 1: (1 + m/2**M) * 2**(f-bias); the reserved patterns
    left out. A value is "even" when it is an even multiple of the gap below it (IEEE's even
    significand; with M = 0 the smallest power is odd and every larger power even)."""
    top_field = 2**E - 2 if ieee_like else 2**E - 1
    values = []
    for f in range(top_field + 1):
        for m in range(2**M):
            if nan_pattern and f == 2**E - 1 and m == 2**M - 1:
                continue
            significand = Fraction(m, 2**M) if f == 0 else 1 + Fraction(m, 2**M)
            values.append(significand * TWO ** (max(f, 1) - bias))
    values = sorted(set(values))
    return [(values[0], True)] + [(v, (v / (v - lo)).numerator % 2 == 0) for lo, v in zip(values, values[1:])]


def log_magnitudes(W: int, bias: int) -> Magnitudes:
    """0 (field 0) and 2**(f - bias) for fields 1 .. 2**(W-1) - 1; even = even field."""
    return [(Fraction(0), True)] + [(TWO ** (f - bias), f % 2 == 0) for f in range(1, 2 ** (W - 1))]


def int_magnitudes(W: int) -> Magnitudes:
    """c * 2**-(W-2) for c in 0 .. 2**(W-1) - 1 (the symmetric two's complement element)."""
    return [(Fraction(c, 2 ** (W - 2)), c % 2 == 0) for c in range(2 ** (W - 1))]


def emax_of(mags: Magnitudes) -> int:
    return floor_log2(mags[-1][0])


def round_to_set(v: Fraction, mags: Magnitudes, rounding: str) -> Fraction:
    """v rounded into the sign-symmetric set with these magnitudes (saturating)."""
    a, negative = abs(v), v < 0
    values = [m for m, _ in mags]
    if a >= values[-1]:
        r = values[-1]
    else:
        i = bisect_right(values, a) - 1
        (lo, _), (hi, hi_even) = mags[i], mags[i + 1]
        mid = (lo + hi) / 2
        if a == lo:
            r = lo
        elif rounding == "floor":
            r = hi if negative else lo
        elif rounding == "half_up":
            r = hi if a > mid or (a == mid and not negative) else lo
        elif rounding == "half_even":
            r = hi if a > mid or (a == mid and hi_even) else lo
        else:
            raise ValueError(rounding)
    return -r if negative else r


def block_round(row: list[Fraction], k: int, mags: Magnitudes, min_shared: int, max_shared: int,
                rounding: str) -> list[tuple[Fraction, int]]:
    """OCP MX rule along one row: per block of k, shared = floor(log2 max|v|) - emax_elem (clamped;
    min_shared for an all-zero block), each element rounded as v / 2**shared; (value, shared) each."""
    emax = emax_of(mags)
    out = []
    for start in range(0, len(row), k):
        block = row[start:start + k]
        amax = max(abs(v) for v in block)
        shared = min_shared if amax == 0 else min(max(floor_log2(amax) - emax, min_shared), max_shared)
        scale = TWO**shared
        out += [(round_to_set(v / scale, mags, rounding) * scale, shared) for v in block]
    return out


def round_float32(v: Fraction) -> Fraction:
    """v >= 0 rounded to float32, to nearest even, saturating at float32's largest finite value."""
    if v == 0:
        return v
    q = max(floor_log2(v), -126) - 23
    return min(round_rational(v / TWO**q, "half_even") * TWO**q, FLOAT32_MAX)


def binary_row(row: list[Fraction], scaled: bool) -> list[Fraction]:
    """sign (zero to +1), times round_float32(mean |x|) when scaled."""
    s = round_float32(sum(abs(v) for v in row) / len(row)) if scaled else Fraction(1)
    return [s if v >= 0 else -s for v in row]


def ternary_row(row: list[Fraction], factor: float, scaled: bool) -> list[Fraction]:
    """Nonzero where n|x| > f * sum|x| (f exactly the float given); scale: mean of the kept |x|."""
    n, total = len(row), sum(abs(v) for v in row)
    keep = [n * abs(v) > Fraction(factor) * total for v in row]
    kept = [abs(v) for v, k in zip(row, keep) if k]
    s = (round_float32(sum(kept) / len(kept)) if kept else Fraction(0)) if scaled else Fraction(1)
    return [(s if v > 0 else -s) if k else Fraction(0) for v, k in zip(row, keep)]


# ---- the oracle itself against published tables ----
def test_oracle_minifloat_tables():
    e4m3 = minifloat_magnitudes(4, 3, 7, False, True)
    assert e4m3[-1][0] == 448 and e4m3[1][0] == TWO**-9 and len(e4m3) == 127
    assert minifloat_magnitudes(5, 2, 15, True, False)[-1][0] == 57344
    assert minifloat_magnitudes(2, 3, 1, False, False)[-1][0] == Fraction(15, 2)
    assert minifloat_magnitudes(3, 2, 3, False, False)[-1][0] == 28
    assert [m for m, _ in minifloat_magnitudes(2, 1, 1, False, False)] == [0, Fraction(1, 2), 1, Fraction(3, 2), 2, 3,
                                                                            4, 6]


def test_oracle_rounding_modes():
    e2m1 = minifloat_magnitudes(2, 1, 1, False, False)
    assert [round_to_set(Fraction(v), e2m1, "half_even") for v in (2.5, 3.5, 5, 7, -2.5, 0.25, 0.75)] == [
        2, 4, 4, 6, -2, 0, 1]
    assert [round_to_set(Fraction(v), e2m1, "half_up") for v in (2.5, -2.5, 5, -5)] == [3, -2, 6, -4]
    assert [round_to_set(Fraction(v), e2m1, "floor") for v in (2.9, -2.1, -7, 100)] == [2, -3, -6, 6]
    log4 = log_magnitudes(4, 3)  # 0, 1/4 .. 16
    assert [round_to_set(Fraction(v), log4, "half_even") for v in (0.125, 1.5, 3, 1.45, 100)] == [0, 2, 2, 1, 16]
    assert floor_log2(Fraction(1, 3)) == -2 and floor_log2(Fraction(8)) == 3


def test_oracle_blocks_and_scales():
    row = [Fraction(3), Fraction(1, 8), Fraction(0), Fraction(-5, 4)]
    got = block_round(row, 2, int_magnitudes(4), -7, 7, "half_even")  # 4-bit ints, LSB 1/4
    assert got == [(3, 1), (0, 1), (0, 0), (Fraction(-5, 4), 0)]
    assert round_float32(Fraction(1, 3)) == Fraction(11184811, 2**25)
    assert binary_row([Fraction(0), Fraction(-2)], True) == [1, -1]
    assert ternary_row([Fraction(1), Fraction(-3), Fraction(0)], 0.75, True) == [0, -3, 0]
