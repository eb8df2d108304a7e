"""Block formats (block_fp / MXINT, block_minifloat / MXFP, block_log) against the Fraction
oracle of the OCP MX rule, the MX element types also against numpy + ml_dtypes, and the block
properties: value set, idempotence, independence of blocks and rows, partial last blocks,
scale clamping, the error bound, packed codes and straight-through gradients."""
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flow.formats import (
    OCP_MINIFLOATS,
    BlockFixedFormat,
    BlockLogFormat,
    BlockMinifloatFormat,
    LogFormat,
    MinifloatFormat,
    mxfp,
    mxint8,
)
from tests.test_formats_oracle import block_round, int_magnitudes, log_magnitudes, minifloat_magnitudes

ROUNDINGS = ["floor", "half_up", "half_even"]


def magnitudes(fmt):
    e = fmt.element
    if isinstance(fmt, BlockFixedFormat):
        return int_magnitudes(fmt.width)
    if isinstance(fmt, BlockLogFormat):
        return log_magnitudes(e.width, e.exponent_bias)
    return minifloat_magnitudes(e.exponent_width, e.mantissa_width, e.exponent_bias, e.ieee_like, e.nan_pattern)


def element_bits(fmt):
    return fmt.element.width


block_formats = st.one_of(
    st.builds(BlockFixedFormat, width=st.integers(2, 9), block_size=st.integers(1, 9),
              exponent_width=st.integers(2, 8)),
    st.builds(BlockMinifloatFormat, element=st.sampled_from(list(OCP_MINIFLOATS.values())
                                                            + [MinifloatFormat(3, 1, 2, ieee_like=True)]),
              block_size=st.integers(1, 9), exponent_width=st.integers(3, 8)),
    st.builds(BlockLogFormat, element=st.builds(LogFormat, width=st.integers(2, 5)), block_size=st.integers(1, 9),
              exponent_width=st.integers(3, 8)),
)
# Rows of floats spanning many binades (dyadic, so Fraction(x) is the float exactly), with zeros.
rows = st.lists(st.one_of(st.just(0.0), st.floats(-2.0**20, 2.0**20, allow_nan=False, width=32)), min_size=1,
                max_size=23)


def oracle(fmt, x, rounding):
    """Per element: (value, shared exponent) from the Fraction oracle, row by row along the last dim."""
    flat = x.reshape(-1, x.shape[-1]).tolist()
    out = [block_round([Fraction(v) for v in row], fmt.block_size, magnitudes(fmt), fmt.min_shared, fmt.max_shared,
                       rounding) for row in flat]
    return [p for row in out for p in row]


def check_against_oracle(fmt, x, rounding):
    codes = fmt.quantize(x, rounding)
    want = oracle(fmt, x, rounding)
    got = fmt.dequantize(codes, torch.float64).reshape(-1).tolist()
    assert got == [float(v) for v, _ in want]
    assert (codes >> element_bits(fmt)).reshape(-1).tolist() == [s + fmt.exponent_bias for _, s in want]


@settings(max_examples=150, deadline=None)
@given(fmt=block_formats, rounding=st.sampled_from(ROUNDINGS), row_a=rows, row_b=rows)
def test_matches_fraction_oracle(fmt, rounding, row_a, row_b):
    n = max(len(row_a), len(row_b))
    pad = lambda row: row + [0.0] * (n - len(row))
    x = torch.tensor([pad(row_a), pad(row_b)], dtype=torch.float64)
    check_against_oracle(fmt, x, rounding)


@pytest.mark.parametrize("fmt", [mxint8(), *(mxfp(name) for name in OCP_MINIFLOATS),
                                 BlockLogFormat(LogFormat(4), 32)], ids=str)
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_mx_configurations_on_random_activations_with_partial_blocks(fmt, rounding):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(3, 2, 75, generator=g) * torch.logspace(-6, 6, 75, base=2.0)).to(torch.float32)
    x[0, 0, :32] = 0  # an all-zero block
    x[1, 1, 64:] *= 1e-30  # a tiny partial last block (11 elements)
    check_against_oracle(fmt, x.double(), rounding)
    assert fmt.block_size == 32 and fmt.exponent_width == 8 and fmt.exponent_bias == 127


@pytest.mark.parametrize("name", OCP_MINIFLOATS)
def test_mxfp_matches_numpy_and_ml_dtypes(name):
    """OCP MX v1.0 directly: X = 2**(floor(log2 max|V|) - emax_elem), P = saturate(V / X) cast to the element."""
    fmt, dtype = mxfp(name), getattr(ml_dtypes, name)
    rng = np.random.default_rng(1)
    v = (rng.standard_normal((4, 96)) * 2.0 ** rng.integers(-20, 20, (4, 1))).astype(np.float32)
    blocks = v.reshape(4, 3, 32).astype(np.float64)
    shared = np.floor(np.log2(np.abs(blocks).max(-1, keepdims=True))) - fmt.element.emax
    top = float(ml_dtypes.finfo(dtype).max)
    elements = np.clip(blocks / 2.0**shared, -top, top).astype(np.float32).astype(dtype).astype(np.float64)
    want = (elements * 2.0**shared).reshape(4, 96)
    assert fmt.fake_quantize(torch.from_numpy(v), "half_even").double().numpy().tolist() == want.tolist()


def test_mxint8_definition_by_example():
    fmt = mxint8()
    x = torch.tensor([1.999, -1.999, 1.0, 2**-7, 3 * 2**-8, 0.0])
    codes = fmt.quantize(x)
    assert (codes >> 8).tolist() == [127] * 6  # one block, shared exponent 0
    assert (codes & 255).tolist() == [127, 0x81, 64, 0, 1, 0]  # symmetric: -1.999 -> -127, not -128
    assert fmt.dequantize(torch.tensor([(127 << 8) | 0x80])).item() == -2.0  # -128 is never made but reads as -2
    assert fmt.values().tolist() == [c / 64 for c in range(-127, 128)]


def test_scale_clamps_and_saturates():
    fmt = BlockFixedFormat(4, 2, exponent_width=3)  # shared exponent in [-3, 3]; element LSB 1/4
    x = torch.tensor([[1000.0, 3.0], [1e-3, 0.0], [float("inf"), -float("inf")]])
    q = fmt.fake_quantize(x, rounding="floor")
    assert q.tolist() == [[14.0, 2.0], [0.0, 0.0], [14.0, -14.0]]  # 7/4 * 2**3 at most, LSB 2
    codes = fmt.quantize(x)
    assert (codes >> 4).tolist() == [[6, 6], [0, 0], [6, 6]]  # field = shared + bias 3
    assert fmt.quantize(torch.tensor([-1e-3]), "floor").tolist() == [(0 << 4) | 0xF]  # floor: -1/4 * 2**-3


@settings(max_examples=80, deadline=None)
@given(fmt=block_formats, rounding=st.sampled_from(ROUNDINGS), row=rows, which=st.integers(0, 22),
       new=st.floats(-2.0**22, 2.0**22, allow_nan=False, width=32))
def test_block_properties(fmt, rounding, row, which, new):
    x = torch.tensor(row, dtype=torch.float64)
    codes = fmt.quantize(x, rounding)
    q = fmt.dequantize(codes, torch.float64)
    shared = (codes >> element_bits(fmt)) - fmt.exponent_bias
    units = (q / torch.exp2(shared.double())).tolist()
    assert set(units) <= set(fmt.values().tolist())  # element values times the block's scale
    assert torch.equal(fmt.quantize(q, rounding), codes)  # idempotent
    k = fmt.block_size
    for start in range(0, len(row), k):  # monotone within a block
        xs, qs = x[start:start + k], q[start:start + k]
        order = torch.argsort(xs, stable=True)
        assert torch.all(qs[order][1:] >= qs[order][:-1])
    # blocks are independent: changing an element changes only its own block's codes
    i = which % len(row)
    y = x.clone()
    y[i] = new
    other = torch.ones(len(row), dtype=torch.bool)
    other[i // k * k:(i // k + 1) * k] = False
    assert torch.equal(fmt.quantize(y, rounding)[other], codes[other])


@settings(max_examples=80, deadline=None)
@given(width=st.integers(2, 9), k=st.integers(1, 9), rounding=st.sampled_from(["half_up", "half_even"]), row=rows)
def test_block_fp_error_bound(width, k, rounding, row):
    """|x - q| <= half an element LSB times the block scale, unless the element saturated."""
    fmt = BlockFixedFormat(width, k)
    x = torch.tensor(row, dtype=torch.float64)
    codes = fmt.quantize(x, rounding)
    q = fmt.dequantize(codes, torch.float64)
    scale = torch.exp2(((codes >> width) - fmt.exponent_bias).double())
    lsb = scale * 2.0 ** -(width - 2)
    top = (2 ** (width - 1) - 1) * lsb
    assert torch.all(((x - q).abs() <= lsb / 2) | (x.abs() > top))


def test_rows_and_partial_blocks_are_separate():
    fmt = BlockFixedFormat(8, 4)
    x = torch.tensor([[1e6, 1.0, 1.0, 1.0, 0.5, 0.25], [0.3, 0.3, 0.3, 0.3, 0.3, 0.3]])
    shared = (fmt.quantize(x) >> 8) - 127
    assert shared.tolist() == [[19, 19, 19, 19, -1, -1], [-2] * 6]  # last block of each row: 2 elements, own scale
    assert fmt.fake_quantize(x)[0, 4:].tolist() == [0.5, 0.25]
    scalar = fmt.quantize(torch.tensor(3.0))
    assert scalar.shape == () and fmt.dequantize(scalar).item() == 3.0


@pytest.mark.parametrize("fmt", [mxint8(), mxfp("float4_e2m1fn"), BlockLogFormat(LogFormat(3), 4)], ids=str)
def test_straight_through_and_refusals(fmt):
    x = torch.randn(4, 40, requires_grad=True)
    y = fmt.fake_quantize(x)
    assert torch.equal(y, fmt.dequantize(fmt.quantize(x)))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    with pytest.raises(ValueError, match="saturate"):
        fmt.quantize(x, overflow="wrap")
    with pytest.raises(ValueError, match="NaN"):
        fmt.quantize(torch.tensor([float("nan")]))
    reserved = torch.tensor([(2**fmt.exponent_width - 1) << element_bits(fmt)])
    assert torch.isnan(fmt.dequantize(reserved)).all()  # the E8M0 NaN scale
