"""The fixed-point functions against the Fraction oracle: ties, negatives, extremes, every mode."""
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flow.formats.fixed import (
    FixedFormat,
    Overflow,
    Rounding,
    cast_codes,
    dequantize,
    fake_quantize,
    quantize,
)
from tests.fraction_oracle import cast_code, quantize_value

ROUNDINGS = [r.value for r in Rounding]
OVERFLOWS = [o.value for o in Overflow]

formats = st.builds(
    FixedFormat,
    width=st.integers(1, 62),
    frac=st.integers(-20, 80),
    signed=st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(
    codes=st.lists(st.integers(-(2**61), 2**61), min_size=1, max_size=16),
    from_frac=st.integers(-20, 90),
    fmt=formats,
    rounding=st.sampled_from(ROUNDINGS),
    overflow=st.sampled_from(OVERFLOWS),
)
def test_cast_codes_matches_oracle(codes, from_frac, fmt, rounding, overflow):
    got = cast_codes(torch.tensor(codes), from_frac, fmt, rounding, overflow).tolist()
    want = [cast_code(c, from_frac, fmt.width, fmt.frac, fmt.signed, rounding, overflow) for c in codes]
    assert got == want


@settings(max_examples=400, deadline=None)
@given(
    values=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=16),
    fmt=formats,
    rounding=st.sampled_from(ROUNDINGS),
    overflow=st.sampled_from(OVERFLOWS),
)
def test_quantize_matches_oracle(values, fmt, rounding, overflow):
    got = quantize(torch.tensor(values, dtype=torch.float64), fmt, rounding, overflow).tolist()
    want = [quantize_value(Fraction(v), fmt.width, fmt.frac, fmt.signed, rounding, overflow) for v in values]
    assert got == want


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("overflow", OVERFLOWS)
@pytest.mark.parametrize("signed", [True, False])
def test_every_tie_and_extreme_of_small_formats(rounding, overflow, signed):
    """Exhaustive: every code of an 8-bit input cast to 4-bit formats at many shifts."""
    codes = torch.arange(-128, 128)
    for from_frac in range(-3, 9):
        for frac in range(-4, 12):
            fmt = FixedFormat(4, frac, signed)
            got = cast_codes(codes, from_frac, fmt, rounding, overflow).tolist()
            want = [cast_code(c, from_frac, 4, frac, signed, rounding, overflow) for c in codes.tolist()]
            assert got == want, (from_frac, frac)


def test_ties_named_explicitly():
    fmt = FixedFormat(8, 0)
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5])
    assert quantize(x, fmt, "floor").tolist() == [0, 1, 2, -1, -2, -3]
    assert quantize(x, fmt, "half_up").tolist() == [1, 2, 3, 0, -1, -2]
    assert quantize(x, fmt, "half_even").tolist() == [0, 2, 2, 0, -2, -2]


def test_saturate_and_wrap_at_the_edges():
    fmt = FixedFormat(4, 0)
    x = torch.tensor([7.0, 8.0, -8.0, -9.0, 23.0])
    assert quantize(x, fmt, overflow="saturate").tolist() == [7, 7, -8, -8, 7]
    assert quantize(x, fmt, overflow="wrap").tolist() == [7, -8, -8, 7, 7]
    ufmt = FixedFormat(4, 0, signed=False)
    assert quantize(torch.tensor([-1.0, 16.0, 17.0]), ufmt, overflow="wrap").tolist() == [15, 0, 1]
    assert quantize(torch.tensor([-1.0, 16.0]), ufmt).tolist() == [0, 15]


def test_fake_quantize_is_quantize_with_straight_through_gradient():
    fmt = FixedFormat(6, 3)
    x = torch.linspace(-5, 5, 101, requires_grad=True)
    y = fake_quantize(x, fmt, "half_even")
    assert torch.equal(y, dequantize(quantize(x, fmt, "half_even"), fmt))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


@pytest.mark.parametrize("width", [0, -3])
def test_width_zero_or_negative_is_a_value_error_naming_width(width):
    with pytest.raises(ValueError, match="width"):
        FixedFormat(width, 0)


def test_bad_mode_names_the_choices():
    with pytest.raises(ValueError, match="half_even"):
        quantize(torch.zeros(1), FixedFormat(8, 0), rounding="nearest")
    with pytest.raises(ValueError, match="saturate"):
        quantize(torch.zeros(1), FixedFormat(8, 0), overflow="clip")


def test_nan_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        quantize(torch.tensor([float("nan")]), FixedFormat(8, 0))


def test_fixed_format_keeps_the_format_protocol():
    from flow.formats.base import Format, Overflow, Rounding, format_from_table

    fmt = format_from_table("fixed", {"data_in_width": 3, "data_in_frac_width": 1, "data_in_signed": False}, "data_in")
    assert isinstance(fmt, Format) and fmt == FixedFormat(3, 1, False)
    assert fmt.values().tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    x = torch.tensor([0.74, 0.75, 9.0, -1.0])
    assert fmt.quantize(x).tolist() == [1, 2, 7, 0]
    assert torch.equal(fmt.fake_quantize(x), fmt.dequantize(fmt.quantize(x)))
    assert fmt.cast(torch.tensor([5, -3]), FixedFormat(4, 2), "floor").tolist() == [2, 0]
    assert fmt.rtl_parameters("IN") == {"IN_WIDTH": 3, "IN_FRAC": 1, "IN_SIGNED": 0}
    # the SystemVerilog encodings are fixed values, whatever order the enums list their members in
    assert [r.rtl_code for r in (Rounding.FLOOR, Rounding.HALF_UP, Rounding.HALF_EVEN)] == [0, 1, 2]
    assert [o.rtl_code for o in (Overflow.SATURATE, Overflow.WRAP)] == [0, 1]


def test_unknown_format_name_is_refused_with_the_known_ones():
    from flow.config.load import ConfigError, load_config

    with pytest.raises(ConfigError, match="'posit' is not a format flow knows; use one of binary, block_fp, "
                                          "block_log, block_minifloat, fixed, integer, log, minifloat"):
        load_config(None, {"quantization.default.name": "posit"})


@pytest.mark.parametrize("width", [1, 3, 8, 16, 22, 23, 32])
def test_the_floating_point_fake_quant_path_equals_the_exact_one(width):
    from flow.formats.fixed import fast_path

    torch.manual_seed(width)
    for frac in (-4, 0, width // 2, width + 3):
        for signed in (True, False):
            fmt = FixedFormat(width, frac, signed)
            x = torch.cat([torch.randn(3000) * 2.0 ** (width - 1 - frac), torch.randn(500) * 2.0 ** -frac,
                           (torch.arange(-300, 300) + 0.5) * 2.0 ** -frac,  # every tie near zero
                           torch.tensor([1e30, -1e30, float("inf"), float("-inf"), 0.0, 1e-40])]).float()
            assert fast_path(x, fmt, Overflow.SATURATE)
            for rounding in ("floor", "half_up", "half_even"):
                exact = dequantize(quantize(x, fmt, rounding, "saturate"), fmt, torch.float32)
                assert torch.equal(fake_quantize(x, fmt, rounding, "saturate"), exact), (fmt, rounding)
