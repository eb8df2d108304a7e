"""QuantMatmul: the exact path against an int64 matmul and a cast, the fake-quant path's value and
gradient, attention's exact scale, and its one-line errors."""
import pytest
import torch

from flow.formats.base import Overflow, Rounding
from flow.formats.fixed import FixedFormat, cast_codes, dequantize, quantize
from flow.nn import QuantMatmul, attention_scale_shift


def test_codes_are_the_exact_product_cast_once():
    a_fmt, b_fmt, out_fmt = FixedFormat(8, 4), FixedFormat(6, 2), FixedFormat(10, 3)
    matmul = QuantMatmul(a_fmt, b_fmt, out_fmt, scale_shift=3, rounding="floor", overflow="wrap")
    generator = torch.Generator().manual_seed(0)
    a = torch.randint(a_fmt.min_code, a_fmt.max_code + 1, (2, 5, 7), generator=generator)
    b = torch.randint(b_fmt.min_code, b_fmt.max_code + 1, (2, 7, 3), generator=generator)
    exact = sum(a[..., k, None] * b[..., k, None, :] for k in range(7))  # no float anywhere
    assert torch.equal(matmul.forward_codes(a, b), cast_codes(exact, 4 + 2 + 3, out_fmt, Rounding.FLOOR, Overflow.WRAP))


def test_fake_quant_value_is_the_exact_path_and_the_gradient_flows_to_both():
    fmt = FixedFormat(12, 6)
    matmul = QuantMatmul(fmt, fmt, fmt, scale_shift=attention_scale_shift(64))
    a, b = torch.randn(4, 8, requires_grad=True), torch.randn(8, 4, requires_grad=True)
    out = matmul(a, b)
    codes = matmul.forward_codes(quantize(a.detach(), fmt), quantize(b.detach(), fmt))
    assert torch.equal(out.detach(), dequantize(codes, fmt, out.dtype))
    out.sum().backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


def test_accumulator_width_holds_the_extremes():
    matmul = QuantMatmul(FixedFormat(8, 4), FixedFormat(8, 4), FixedFormat(8, 4))
    # 64 products of (-128)(-128) = 2**20: 22 signed bits; one fewer would not hold it
    assert matmul.accumulator_width(64) == 22
    unsigned = QuantMatmul(FixedFormat(9, 8, signed=False), FixedFormat(8, 4), FixedFormat(8, 4))
    assert unsigned.accumulator_width(128) == 24  # 128 x 511 x 127 < 2**23 and -128 x 511 x 128 >= -2**23


def test_attention_scale_is_a_shift_only_for_powers_of_four():
    assert [attention_scale_shift(d) for d in (1, 4, 16, 64, 256)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"1/sqrt\(32\) is not a power of two"):
        attention_scale_shift(32)


@pytest.mark.parametrize("a_shape,b_shape,message", [
    ((4, 8), (4, 8), "a's last dimension must equal b's second to last; transpose b"),
    ((4, 4096), (4096, 4), "accumulator, over 62"),
])
def test_bad_shapes_are_one_line_errors(a_shape, b_shape, message):
    matmul = QuantMatmul(FixedFormat(32, 4), FixedFormat(32, 4), FixedFormat(8, 4))
    with pytest.raises(ValueError, match=message):
        matmul.forward_codes(torch.zeros(a_shape, dtype=torch.long), torch.zeros(b_shape, dtype=torch.long))
