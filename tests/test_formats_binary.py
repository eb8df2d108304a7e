"""Binary and ternary against the Fraction oracle (exact means rounded once to float32), and
their properties. Neither is monotone across tensors (the scale and threshold depend on the
whole row): they are monotone within one row of one tensor, which is what is checked."""
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flow.formats import BinaryFormat, TernaryFormat
from tests.test_formats_oracle import binary_row, ternary_row

# Dyadic inputs with a short range, so float64 row sums are exact and the oracle's exact means
# are what float64 division then one rounding to float32 give (53 >= 2 * 24 + 2).
dyadic = st.integers(-(2**12), 2**12).map(lambda n: n / 64)
matrices = st.integers(1, 17).flatmap(lambda n: st.lists(st.lists(dyadic, min_size=n, max_size=n), min_size=1,
                                                         max_size=4))
formats = st.one_of(st.builds(BinaryFormat, scaled=st.booleans()),
                    st.builds(TernaryFormat, threshold_factor=st.sampled_from([0.0, 0.5, 0.75, 0.625]),
                              scaled=st.booleans()))


def oracle(fmt, rows):
    if isinstance(fmt, BinaryFormat):
        return [[float(v) for v in binary_row([Fraction(x) for x in row], fmt.scaled)] for row in rows]
    return [[float(v) for v in ternary_row([Fraction(x) for x in row], fmt.threshold_factor, fmt.scaled)]
            for row in rows]


@settings(max_examples=150, deadline=None)
@given(fmt=formats, rows=matrices)
def test_matches_fraction_oracle(fmt, rows):
    x = torch.tensor(rows, dtype=torch.float64)
    assert fmt.dequantize(fmt.quantize(x), torch.float64).tolist() == oracle(fmt, rows)
    assert fmt.fake_quantize(x.float()).double().tolist() == oracle(fmt, rows)


@settings(max_examples=80, deadline=None)
@given(fmt=formats, rows=matrices)
def test_properties(fmt, rows):
    x = torch.tensor(rows, dtype=torch.float64)
    codes = fmt.quantize(x)
    q = fmt.dequantize(codes, torch.float64)
    if fmt.scaled:  # the documented packing: float32 bits of the row's scale above the element bits
        scale = (codes >> (1 if isinstance(fmt, BinaryFormat) else 2)).to(torch.int32).view(torch.float32).double()
        assert torch.all(scale == scale[..., :1])  # one scale per row
        assert torch.all(q[scale == 0] == 0)  # an all-zero row has scale 0
        q = torch.where(scale > 0, q / scale, fmt.values()[-1])
    assert set(q.reshape(-1).tolist()) <= set(fmt.values().tolist())  # unit values times the row's scale
    q = fmt.dequantize(codes, torch.float64)
    assert torch.equal(fmt.quantize(q), codes)  # idempotent
    for xr, qr in zip(x, q):  # monotone within a row
        order = torch.argsort(xr, stable=True)
        assert torch.all(qr[order][1:] >= qr[order][:-1])


def test_binary_definition_by_example():
    x = torch.tensor([[0.0, -1.0, 2.0, -3.0], [0.0, 0.0, 0.0, 0.0]])
    assert BinaryFormat().quantize(x).tolist() == [[1, 0, 1, 0], [1, 1, 1, 1]]  # bit 1 is +1; zero maps to +1
    assert BinaryFormat().fake_quantize(x).tolist() == [[1, -1, 1, -1], [1, 1, 1, 1]]
    assert BinaryFormat(scaled=True).fake_quantize(x).tolist() == [[1.5, -1.5, 1.5, -1.5], [0, 0, 0, 0]]
    codes = BinaryFormat(scaled=True).quantize(torch.tensor([1.0, -0.5]))
    assert codes.tolist() == [(0x3F400000 << 1) | 1, 0x3F400000 << 1]  # float32 0.75 above the bit


def test_ternary_definition_by_example():
    fmt = TernaryFormat(threshold_factor=0.5)
    x = torch.tensor([[1.0, -1.0, 0.25, 0.0], [2.0, 2.0, 2.0, 2.0]])  # row 0: mean 0.5625, threshold 0.28125
    assert fmt.fake_quantize(x).tolist() == [[1, -1, 0, 0], [2, 2, 2, 2]]
    assert TernaryFormat(0.5, scaled=False).quantize(x).tolist() == [[1, -1, 0, 0], [1, 1, 1, 1]]
    tie = torch.tensor([1.0, 3.0])  # f * mean = 0.5 * 2 = 1: |1| is not above it
    assert TernaryFormat(0.5).fake_quantize(tie).tolist() == [0, 3]
    codes = fmt.quantize(torch.tensor([-2.0, 2.0, 0.0]))
    assert (codes & 3).tolist() == [3, 1, 0] and (codes >> 2).tolist() == [0x40000000] * 3  # float32 2.0


def test_rows_are_the_last_dimension_and_scalars_work():
    fmt = BinaryFormat(scaled=True)
    x = torch.tensor([[[1.0, 3.0], [-2.0, 4.0]]])
    assert fmt.fake_quantize(x).tolist() == [[[2.0, 2.0], [-3.0, 3.0]]]
    assert fmt.fake_quantize(torch.tensor(-5.0)).item() == -5.0
    assert TernaryFormat().fake_quantize(torch.tensor(-5.0)).item() == -5.0


@pytest.mark.parametrize("fmt", [BinaryFormat(), BinaryFormat(True), TernaryFormat(), TernaryFormat(0.3, False)],
                         ids=str)
def test_straight_through_and_refusals(fmt):
    x = torch.randn(3, 16, requires_grad=True)
    y = fmt.fake_quantize(x)
    assert torch.equal(y, fmt.dequantize(fmt.quantize(x)))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    with pytest.raises(ValueError, match="NaN"):
        fmt.quantize(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="rounding"):
        fmt.quantize(x, rounding="nearest")


def test_infinite_row_sums_are_refused_where_they_set_the_scale():
    with pytest.raises(ValueError, match="not finite"):
        TernaryFormat().quantize(torch.tensor([1.0, float("inf")]))
    with pytest.raises(ValueError, match="not finite"):
        BinaryFormat(True).quantize(torch.tensor([1e308, 1e308], dtype=torch.float64))
    assert BinaryFormat().fake_quantize(torch.tensor([float("-inf")])).tolist() == [-1.0]
