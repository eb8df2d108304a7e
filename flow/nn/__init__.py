"""Quantized modules built on flow.formats: each runs on fake-quant floats or exact codes."""
from flow.nn.activation import QuantLeakyReLU, QuantReLU
from flow.nn.join import Concat, QuantAdd, add_sum_format
from flow.nn.linear import LinearQuantConfig, QuantLinear, accumulator_format
from flow.nn.transformer import (
    QuantGELU,
    QuantLayerNorm,
    QuantMatmul,
    QuantSoftmax,
    QuantTanh,
    attention_scale_shift,
)

__all__ = ["Concat", "QuantAdd", "add_sum_format", "LinearQuantConfig", "QuantLinear", "QuantReLU", "QuantLeakyReLU", "QuantGELU",
           "QuantLayerNorm", "QuantMatmul", "QuantSoftmax", "QuantTanh", "accumulator_format", "attention_scale_shift"]
