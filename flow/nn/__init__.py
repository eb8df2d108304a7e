"""Quantized modules built on flow.formats: each runs on fake-quant floats or exact codes."""
from flow.nn.activation import QuantLeakyReLU, QuantReLU
from flow.nn.linear import LinearQuantConfig, QuantLinear, accumulator_format

__all__ = ["LinearQuantConfig", "QuantLinear", "QuantReLU", "QuantLeakyReLU", "accumulator_format"]
