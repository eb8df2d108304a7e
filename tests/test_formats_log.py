"""The log format against the Fraction oracle (nearest value, ties to an even exponent field,
zero counted even), and its properties: value set, idempotence, monotonicity, nearest-value
error, saturation, the zero code and straight-through gradients."""
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flow.formats import LogFormat
from tests.test_formats_oracle import log_magnitudes, round_to_set

ROUNDINGS = ["floor", "half_up", "half_even"]
log_formats = st.builds(LogFormat, width=st.integers(2, 6), exponent_bias=st.one_of(st.none(), st.integers(-6, 20)))


def edge_inputs(fmt):
    """Each value, each midpoint, just off each midpoint, and beyond the largest value, both signs."""
    mags = [m for m, _ in log_magnitudes(fmt.width, fmt.exponent_bias)]
    out = []
    for lo, hi in zip(mags, mags[1:] + [mags[-1] * 4]):
        mid = (lo + hi) / 2
        for v in (lo, mid, mid * (1 + Fraction(1, 1024)), mid * (1 - Fraction(1, 1024)), hi * 5):
            out += [float(v), -float(v)]
    return out


def test_definition_by_example():
    fmt = LogFormat(4)  # bias 3: 0, ±1/4 .. ±16
    assert fmt.values().tolist() == [-16, -8, -4, -2, -1, -0.5, -0.25, 0, 0.25, 0.5, 1, 2, 4, 8, 16]
    x = torch.tensor([1.45, 1.5, 3.0, 0.125, 0.126, -0.7, 100.0, float("-inf"), 0.0, -0.0])
    assert fmt.fake_quantize(x).tolist() == [1, 2, 2, 0, 0.25, -0.5, 16, -16, 0, 0]
    assert fmt.quantize(torch.tensor([-1.0, 0.0, -0.0, 1e-9, -1e-9])).tolist() == [0b1011, 0, 0, 0, 0]
    assert fmt.dequantize(torch.tensor([0b1000])).item() == 0  # negative zero code reads as zero
    assert fmt.fake_quantize(torch.tensor([1.5, -1.5, 3.0, -1.1]), "half_up").tolist() == [2, -1, 4, -1]
    assert fmt.fake_quantize(torch.tensor([1.5, -1.5, 1.9, -1.1]), "floor").tolist() == [1, -2, 1, -2]


@settings(max_examples=150, deadline=None)
@given(fmt=log_formats, rounding=st.sampled_from(ROUNDINGS),
       extra=st.lists(st.floats(-1e7, 1e7, allow_nan=False, width=32), max_size=20))
def test_matches_fraction_oracle(fmt, rounding, extra):
    mags = log_magnitudes(fmt.width, fmt.exponent_bias)
    xs = edge_inputs(fmt) + extra
    got = fmt.dequantize(fmt.quantize(torch.tensor(xs, dtype=torch.float64), rounding), torch.float64).tolist()
    assert got == [float(round_to_set(Fraction(x), mags, rounding)) for x in xs]


@settings(max_examples=80, deadline=None)
@given(fmt=log_formats, rounding=st.sampled_from(ROUNDINGS),
       xs=st.lists(st.floats(-1e5, 1e5, allow_nan=False), min_size=1, max_size=40))
def test_properties(fmt, rounding, xs):
    x = torch.tensor(sorted(xs), dtype=torch.float64)
    codes = fmt.quantize(x, rounding)
    q = fmt.dequantize(codes, torch.float64)
    values = fmt.values().tolist()
    assert set(q.tolist()) <= set(values)  # in the value set
    assert torch.equal(fmt.quantize(q, rounding), codes)  # idempotent
    assert torch.all(q[1:] >= q[:-1])  # monotone
    if rounding != "floor":  # nearest value within range
        for v, r in zip(x.tolist(), q.tolist()):
            if abs(v) <= fmt.max_value:
                assert abs(Fraction(v) - Fraction(r)) == min(abs(Fraction(v) - Fraction(u)) for u in values)


def test_refusals_and_straight_through():
    fmt = LogFormat(5, 8)
    with pytest.raises(ValueError, match="NaN"):
        fmt.quantize(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="saturate"):
        fmt.quantize(torch.zeros(1), overflow="wrap")
    x = torch.linspace(-3, 3, 61, requires_grad=True)
    y = fmt.fake_quantize(x)
    assert torch.equal(y, fmt.dequantize(fmt.quantize(x)))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
