"""Quantized Linear: y = x W^T + b with a fixed-point format for x, W, b and y.

Products and sums are exact integers at frac FX + FW in an accumulator wide enough never to
overflow; the bias is aligned to that frac; the sum is cast to Y with the layer's rounding
and overflow modes (docs/DESIGN.md, "Numeric contract"). ``forward`` is the fake-quant path used in
training; ``forward_codes`` is the exact int64 path, the reference for the RTL.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from flow.formats.fixed import (
    MAX_CODE_BITS,
    FixedFormat,
    Overflow,
    Rounding,
    cast_codes,
    fake_quantize,
    parse_overflow,
    parse_rounding,
    quantize,
)


@dataclass(frozen=True)
class LinearQuantConfig:
    """Formats of a quantized Linear layer and how its casts round and overflow."""

    data_in: FixedFormat = field(default_factory=lambda: FixedFormat(8, 4))
    weight: FixedFormat = field(default_factory=lambda: FixedFormat(8, 4))
    bias: FixedFormat = field(default_factory=lambda: FixedFormat(8, 4))
    data_out: FixedFormat = field(default_factory=lambda: FixedFormat(8, 4))
    rounding: Rounding = Rounding.HALF_UP
    overflow: Overflow = Overflow.SATURATE

    def __post_init__(self) -> None:
        object.__setattr__(self, "rounding", parse_rounding(self.rounding))
        object.__setattr__(self, "overflow", parse_overflow(self.overflow))


def _bits_signed(lo: int, hi: int) -> int:
    """Smallest two's complement width holding every integer in [lo, hi]."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def accumulator_format(config: LinearQuantConfig, in_features: int) -> FixedFormat:
    """The exact accumulator: products plus bias at frac FX + FW, never overflowing.

    Width is (product bits + ceil(log2 N)) or the aligned bias width, whichever is larger,
    plus one; refused beyond 62 bits so the int64 reference stays exact.
    """
    x, w, b = config.data_in, config.weight, config.bias
    x_bits = x.width + (0 if x.signed else 1)  # an unsigned element as a signed number
    w_bits = w.width + (0 if w.signed else 1)
    sum_bits = x_bits + w_bits + math.ceil(math.log2(max(in_features, 1)))
    shift = x.frac + w.frac - b.frac
    if shift >= 0:
        bias_bits = b.width + shift + (0 if b.signed else 1)
    else:  # bias is cast once, offline; rounding can add one bit
        bias_bits = max(b.width + shift, 1) + 2
    width = max(sum_bits, bias_bits) + 1
    if width > MAX_CODE_BITS:
        raise ValueError(
            f"accumulator needs {width} bits (> {MAX_CODE_BITS}); narrow data_in, weight or bias "
            f"widths ({x.width}, {w.width}, {b.width}) for this {in_features}-input layer"
        )
    return FixedFormat(width, x.frac + w.frac, signed=True)


class QuantLinear(nn.Linear):
    """nn.Linear whose forward computes the fixed-point contract (fake-quant, STE gradients)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        config: LinearQuantConfig | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.config = config or LinearQuantConfig()
        self.acc_format = accumulator_format(self.config, in_features)

    @classmethod
    def from_float(cls, linear: nn.Linear, config: LinearQuantConfig) -> QuantLinear:
        """Wrap a trained nn.Linear, sharing its weight and bias values."""
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, config)
        with torch.no_grad():
            layer.weight.copy_(linear.weight)
            if linear.bias is not None:
                layer.bias.copy_(linear.bias)
        return layer.to(linear.weight.device)

    def extra_repr(self) -> str:
        c = self.config
        return (f"{super().extra_repr()}, in={c.data_in}, w={c.weight}, b={c.bias}, "
                f"out={c.data_out}, acc={self.acc_format}, {c.rounding.value}, {c.overflow.value}")

    # ---- fake-quant path (training, software accuracy) ----
    def _fake_bias(self) -> torch.Tensor | None:
        if self.bias is None:
            return None
        c = self.config
        b = fake_quantize(self.bias, c.bias, c.rounding, c.overflow)
        if c.bias.frac > self.acc_format.frac:  # the same offline cast as bias_codes()
            b = fake_quantize(b, self.acc_format, c.rounding, Overflow.SATURATE)
        return b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        xq = fake_quantize(x, c.data_in, c.rounding, c.overflow)
        wq = fake_quantize(self.weight, c.weight, c.rounding, c.overflow)
        y = nn.functional.linear(xq, wq, self._fake_bias())
        return fake_quantize(y, c.data_out, c.rounding, c.overflow)

    # ---- exact integer path (reference for RTL and hardware accuracy) ----
    def weight_codes(self) -> torch.Tensor:
        """Weight codes, shape (out_features, in_features), int64."""
        c = self.config
        return quantize(self.weight, c.weight, c.rounding, c.overflow)

    def bias_codes(self) -> torch.Tensor:
        """Bias codes aligned to the accumulator frac FX + FW (zeros without a bias), int64."""
        c = self.config
        if self.bias is None:
            return torch.zeros(self.out_features, dtype=torch.int64)
        codes = quantize(self.bias, c.bias, c.rounding, c.overflow)
        return cast_codes(codes, c.bias.frac, self.acc_format, c.rounding, Overflow.SATURATE)

    def accumulator_interval(self) -> tuple[int, int]:
        """The exact range of every output's sum (products plus bias) over all inputs the data_in
        format can hold, from the actual weight and bias codes."""
        fmt = self.config.data_in
        x_lo, x_hi = (-(1 << (fmt.width - 1)), (1 << (fmt.width - 1)) - 1) if fmt.signed else (0, (1 << fmt.width) - 1)
        w, b = self.weight_codes(), self.bias_codes()
        positive, negative = w.clamp(min=0), w.clamp(max=0)
        hi = positive.sum(dim=1) * x_hi + negative.sum(dim=1) * x_lo + b
        lo = positive.sum(dim=1) * x_lo + negative.sum(dim=1) * x_hi + b
        return int(lo.min()), int(hi.max())

    def accumulator_width(self) -> int:
        """The two's complement bits that hold :meth:`accumulator_interval` (at least 2): what the
        hardware accumulates in. Never more than ``acc_format.width`` (the formats' worst case)."""
        lo, hi = self.accumulator_interval()
        bits = 2
        while not (-(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1))):
            bits += 1
        return min(bits, self.acc_format.width)

    def forward_codes(self, x_codes: torch.Tensor) -> torch.Tensor:
        """Exact: input codes of ``data_in`` to output codes of ``data_out`` (int64)."""
        if x_codes.dtype != torch.int64:
            raise TypeError(f"forward_codes takes int64 codes, got {x_codes.dtype}")
        c = self.config
        acc = x_codes @ self.weight_codes().T + self.bias_codes()
        return cast_codes(acc, self.acc_format.frac, c.data_out, c.rounding, c.overflow)
