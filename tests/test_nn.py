"""Quantized modules: the exact path equals the fake-quant path where float32 sums are exact."""
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from flow.formats.fixed import FixedFormat, dequantize, quantize
from flow.nn import LinearQuantConfig, QuantLeakyReLU, QuantLinear, QuantReLU, accumulator_format


def fmt(width, frac, signed=True):
    return FixedFormat(width, frac, signed)


@settings(max_examples=60, deadline=None)
@given(
    n_in=st.integers(1, 24),
    n_out=st.integers(1, 8),
    wx=st.integers(2, 8), fx=st.integers(-2, 8), x_signed=st.booleans(),
    ww=st.integers(2, 8), fw=st.integers(-2, 8),
    wb=st.integers(2, 10), fb=st.integers(-2, 20),
    wy=st.integers(2, 12), fy=st.integers(-3, 12), y_signed=st.booleans(),
    rounding=st.sampled_from(["floor", "half_up", "half_even"]),
    overflow=st.sampled_from(["saturate", "wrap"]),
    seed=st.integers(0, 2**16),
)
def test_exact_and_fake_quant_linear_agree(n_in, n_out, wx, fx, x_signed, ww, fw, wb, fb, wy, fy,
                                           y_signed, rounding, overflow, seed):
    config = LinearQuantConfig(fmt(wx, fx, x_signed), fmt(ww, fw), fmt(wb, fb), fmt(wy, fy, y_signed),
                               rounding, overflow)
    torch.manual_seed(seed)
    layer = QuantLinear(n_in, n_out, config=config)
    with torch.no_grad():
        layer.weight.uniform_(-2.0 ** (ww - 1 - fw) * 1.2, 2.0 ** (ww - 1 - fw) * 1.2)
        layer.bias.uniform_(-2.0 ** (wb - 1 - fb) * 1.2, 2.0 ** (wb - 1 - fb) * 1.2)
    x = torch.randn(16, n_in) * 2.0 ** (wx - 1 - fx)
    acc = layer.acc_format
    assume(acc.width <= 24)  # the contract's claim: float32 holds every sum exactly only up to 24 bits
    x_codes = quantize(x, config.data_in, rounding, overflow)
    exact = layer.forward_codes(x_codes)
    fake = layer(x)
    assert torch.equal(fake, dequantize(exact, config.data_out))


def test_accumulator_width_follows_the_contract():
    config = LinearQuantConfig(fmt(8, 4), fmt(8, 4), fmt(8, 4), fmt(8, 4))
    acc = accumulator_format(config, 64)
    assert acc.frac == 8
    assert acc.width == 8 + 8 + 6 + 1  # WX + WW + ceil(log2 N) + 1


def test_accumulator_beyond_62_bits_is_refused():
    config = LinearQuantConfig(fmt(32, 16), fmt(32, 16), fmt(32, 16), fmt(32, 16))
    with pytest.raises(ValueError, match="accumulator needs"):
        accumulator_format(config, 1024)


def test_linear_saturates_and_wraps_outputs():
    config = LinearQuantConfig(fmt(8, 0), fmt(8, 0), fmt(8, 0), fmt(4, 0), overflow="wrap")
    layer = QuantLinear(1, 1, config=config)
    with torch.no_grad():
        layer.weight.fill_(3.0)
        layer.bias.fill_(0.0)
    assert layer.forward_codes(torch.tensor([[3]])).tolist() == [[-7]]  # 9 wraps in 4 bits
    layer.config = LinearQuantConfig(fmt(8, 0), fmt(8, 0), fmt(8, 0), fmt(4, 0))
    assert layer.forward_codes(torch.tensor([[3]])).tolist() == [[7]]


def test_relu_and_leaky_relu_exact_equals_fake():
    f = fmt(8, 3)
    codes = torch.arange(-128, 128)
    x = dequantize(codes, f)
    assert torch.equal(QuantReLU()(x), dequantize(QuantReLU().forward_codes(codes), f))
    for shift in (1, 2, 5):
        for rounding in ("floor", "half_up", "half_even"):
            leaky = QuantLeakyReLU(f, shift, rounding)
            assert torch.equal(leaky(x), dequantize(leaky.forward_codes(codes), f))
    leaky = QuantLeakyReLU(f, 2, "floor")
    assert leaky.forward_codes(torch.tensor([-5, 5])).tolist() == [-2, 5]


def test_qat_gradients_flow_through_quantized_linear():
    layer = QuantLinear(4, 2)
    x = torch.randn(3, 4)
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
