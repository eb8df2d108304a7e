"""Minifloat against ml_dtypes (bit for bit on the OCP element types) and against the Fraction
oracle (other layouts, every rounding mode), plus its properties: value set, idempotence,
monotonicity, the half-ulp error bound, saturation and straight-through gradients."""
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from flow.formats import OCP_MINIFLOATS, MinifloatFormat
from tests.test_formats_oracle import floor_log2, minifloat_magnitudes, round_to_set

ROUNDINGS = ["floor", "half_up", "half_even"]
ML_TYPES = {  # ml_dtypes type, the flow configuration that must equal it
    "float8_e4m3fn": (ml_dtypes.float8_e4m3fn, MinifloatFormat(4, 3, nan_pattern=True)),
    "float8_e5m2": (ml_dtypes.float8_e5m2, MinifloatFormat(5, 2, ieee_like=True)),
    "float6_e2m3fn": (ml_dtypes.float6_e2m3fn, MinifloatFormat(2, 3)),
    "float6_e3m2fn": (ml_dtypes.float6_e3m2fn, MinifloatFormat(3, 2)),
    "float4_e2m1fn": (ml_dtypes.float4_e2m1fn, MinifloatFormat(2, 1)),
}


def ml_finite(dtype, width):
    """Every bit pattern of the ml_dtypes type with a finite value: (bits, float64 values)."""
    bits = np.arange(2**width, dtype=np.uint8)
    values = bits.view(dtype).astype(np.float64)
    finite = np.isfinite(values)
    return bits[finite].astype(np.int64), values[finite]


@pytest.mark.parametrize("name", ML_TYPES)
def test_ocp_configurations_and_maxima(name):
    dtype, fmt = ML_TYPES[name]
    assert OCP_MINIFLOATS[name] == fmt
    assert fmt.max_value == float(ml_dtypes.finfo(dtype).max)
    assert fmt.width == ml_dtypes.finfo(dtype).bits


@pytest.mark.parametrize("name", ML_TYPES)
def test_every_representable_value_round_trips_bit_for_bit(name):
    dtype, fmt = ML_TYPES[name]
    bits, values = ml_finite(dtype, fmt.width)
    codes = fmt.quantize(torch.from_numpy(values))
    assert codes.tolist() == np.where(values == 0, 0, bits).tolist()  # quantize never makes -0
    assert fmt.dequantize(codes, torch.float64).numpy().tolist() == values.tolist()
    decoded = fmt.dequantize(torch.from_numpy(bits), torch.float64).numpy()  # -0 code included
    assert decoded.tolist() == values.tolist() and np.array_equal(np.signbit(decoded), np.signbit(values))


@pytest.mark.parametrize("name", ML_TYPES)
def test_values_are_ml_dtypes_finite_set(name):
    dtype, fmt = ML_TYPES[name]
    assert fmt.values().numpy().tolist() == np.unique(ml_finite(dtype, fmt.width)[1]).tolist()


@pytest.mark.parametrize("name", ML_TYPES)
def test_ties_and_their_neighbours_round_like_ml_dtypes(name):
    dtype, fmt = ML_TYPES[name]
    grid = np.unique(ml_finite(dtype, fmt.width)[1])
    mids = ((grid[:-1] + grid[1:]) / 2).astype(np.float32)
    assert np.array_equal(mids.astype(np.float64), (grid[:-1] + grid[1:]) / 2)  # the ties are exact in float32
    rng = np.random.default_rng(0)
    logs = rng.uniform(np.log2(float(grid[grid > 0].min())) - 2, np.log2(fmt.max_value) + 1, 4000)
    randoms = (rng.choice([-1, 1], 4000) * 2.0**logs).astype(np.float32)
    points = np.concatenate([mids, np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(-np.inf)),
                             grid.astype(np.float32), randoms])
    theirs = points.astype(dtype)
    finite = np.isfinite(theirs.astype(np.float64))
    assert finite.mean() > 0.9
    mine = fmt.quantize(torch.from_numpy(points), "half_even")
    assert fmt.dequantize(mine, torch.float64).numpy()[finite].tolist() == theirs.astype(np.float64)[finite].tolist()
    nonzero = finite & (theirs.astype(np.float64) != 0)
    their_bits = theirs.view(np.uint8).astype(np.int64)
    assert mine.numpy()[nonzero].tolist() == their_bits[nonzero].tolist()
    # where ml_dtypes gives inf/NaN (out of range), flow saturates
    out = ~finite
    assert np.all(fmt.dequantize(mine, torch.float64).numpy()[out] == np.sign(points[out]) * fmt.max_value)


def test_saturation_inf_and_refusals():
    fmt = MinifloatFormat(4, 3, nan_pattern=True)
    x = torch.tensor([1e6, -1e6, 449.0, 480.0, float("inf"), float("-inf")])
    assert fmt.fake_quantize(x).tolist() == [448.0, -448.0, 448.0, 448.0, 448.0, -448.0]
    with pytest.raises(ValueError, match="NaN"):
        fmt.quantize(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="saturate"):
        fmt.quantize(torch.zeros(2), overflow="wrap")


def test_negative_zero_is_never_produced():
    fmt = MinifloatFormat(2, 1)
    assert fmt.quantize(torch.tensor([-0.0, -0.1, -1e-30, 0.0])).tolist() == [0, 0, 0, 0]
    assert fmt.quantize(torch.tensor([-0.1]), "floor").tolist() == [0b1001]  # -0.5, floor goes down


# ---- other layouts and modes against the Fraction oracle ----
@st.composite
def minifloats(draw, max_bits=9):
    E = draw(st.integers(1, 5))
    M = draw(st.integers(0, max(0, min(4, max_bits - 1 - E))))
    flags = draw(st.sampled_from([(False, False), (True, False), (False, True)]))
    assume(not (flags[0] and E < 2) and not (flags[1] and M < 1))
    bias = draw(st.one_of(st.none(), st.integers(-4, 12)))
    return MinifloatFormat(E, M, bias, *flags)


def oracle_inputs(fmt):
    """Floats around every grid point: the values, ties, just off the ties, beyond the range."""
    mags = [m for m, _ in minifloat_magnitudes(fmt.exponent_width, fmt.mantissa_width, fmt.exponent_bias,
                                               fmt.ieee_like, fmt.nan_pattern)]
    out = []
    for lo, hi in zip(mags, mags[1:] + [mags[-1] * 2]):
        mid = (lo + hi) / 2
        for v in (lo, mid, mid + (hi - lo) / 64, mid - (hi - lo) / 64, hi * 3):
            out += [float(v), -float(v)]
    return out


@settings(max_examples=150, deadline=None)
@given(fmt=minifloats(), rounding=st.sampled_from(ROUNDINGS),
       extra=st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=32), max_size=20))
def test_matches_fraction_oracle(fmt, rounding, extra):
    mags = minifloat_magnitudes(fmt.exponent_width, fmt.mantissa_width, fmt.exponent_bias, fmt.ieee_like,
                                fmt.nan_pattern)
    xs = oracle_inputs(fmt) + extra
    got = fmt.dequantize(fmt.quantize(torch.tensor(xs, dtype=torch.float64), rounding), torch.float64).tolist()
    assert got == [float(round_to_set(Fraction(x), mags, rounding)) for x in xs]


# ---- properties ----
@settings(max_examples=80, deadline=None)
@given(fmt=minifloats(), rounding=st.sampled_from(ROUNDINGS),
       xs=st.lists(st.floats(-300, 300, allow_nan=False), min_size=1, max_size=40))
def test_properties(fmt, rounding, xs):
    x = torch.tensor(sorted(xs), dtype=torch.float64)
    codes = fmt.quantize(x, rounding)
    q = fmt.dequantize(codes, torch.float64)
    assert set(q.tolist()) <= set(fmt.values().tolist())  # in the value set
    assert torch.equal(fmt.quantize(q, rounding), codes)  # idempotent (codes)
    assert torch.all(q[1:] >= q[:-1])  # monotone
    for v, r in zip(x.tolist(), q.tolist()):  # within half an ulp of x's binade (an ulp for floor), in range
        if v != 0 and abs(v) <= fmt.max_value:
            ulp = Fraction(2) ** (max(floor_log2(abs(Fraction(v))), fmt.emin) - fmt.mantissa_width)
            assert abs(Fraction(v) - Fraction(r)) <= (ulp if rounding == "floor" else ulp / 2)


def test_fake_quantize_is_straight_through():
    fmt = MinifloatFormat(4, 3, nan_pattern=True)
    x = torch.linspace(-600, 600, 301, requires_grad=True)
    y = fmt.fake_quantize(x)
    assert torch.equal(y, fmt.dequantize(fmt.quantize(x)))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
