"""FormatLinear: an nn.Linear that fake-quantizes its operands with any registered number format.

This is the MASE-style quantized Linear used for quantization-aware training and accuracy
studies of any model (BERT included): ``y = q_out(q_in(x) @ q_w(W)^T + q_b(b))`` where each
``q`` is a ``Format.fake_quantize`` (straight-through gradients) or the identity when that
operand stays in float. Unlike MASE's reference it keeps the bias.

It is not the hardware-exact layer: ``flow.nn.QuantLinear`` (fixed point only) also aligns the
bias to the accumulator's frac and has an exact integer path for the RTL. For fixed point with
``bias.frac <= data_in.frac + weight.frac`` the two compute the same values.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from flow.formats.base import Format, Overflow, Rounding, parse_overflow, parse_rounding

OPERANDS = ("data_in", "weight", "bias", "data_out")


@dataclass(frozen=True)
class LinearFormats:
    """The format of each operand of a Linear (``None``: that operand stays float) and the cast modes."""

    data_in: Format | None = None
    weight: Format | None = None
    bias: Format | None = None
    data_out: Format | None = None
    rounding: Rounding = Rounding.HALF_UP
    overflow: Overflow = Overflow.SATURATE

    def __post_init__(self) -> None:
        object.__setattr__(self, "rounding", parse_rounding(self.rounding))
        object.__setattr__(self, "overflow", parse_overflow(self.overflow))

    def describe(self) -> dict[str, str]:
        """Operand name to the format's text (``float`` when not quantized)."""
        return {op: "float" if getattr(self, op) is None else str(getattr(self, op)) for op in OPERANDS}

    def apply(self, operand: str, x: torch.Tensor) -> torch.Tensor:
        """Fake-quantize ``x`` as ``operand`` (identity when that operand is float)."""
        fmt = getattr(self, operand)
        return x if fmt is None else fmt.fake_quantize(x, self.rounding, self.overflow)


class FormatLinear(nn.Linear):
    """nn.Linear whose forward fake-quantizes input, weight, bias and (optionally) output."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 formats: LinearFormats | None = None, device: torch.device | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.formats = formats or LinearFormats()

    @classmethod
    def from_linear(cls, linear: nn.Linear, formats: LinearFormats) -> FormatLinear:
        """A new layer holding copies of ``linear``'s weight and bias (values, requires_grad,
        device, dtype) and its train/eval mode. Parametrizations (e.g. prune masks) are not
        copied here; ``flow.passes.quantize`` moves them over."""
        w = linear.weight
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, formats=formats,
                    device=w.device, dtype=w.dtype)
        with torch.no_grad():
            layer.weight.copy_(w)
            if linear.bias is not None:
                layer.bias.copy_(linear.bias)
        layer.weight.requires_grad_(w.requires_grad)
        if linear.bias is not None:
            layer.bias.requires_grad_(linear.bias.requires_grad)
        return layer.train(linear.training)

    def quantized_weight(self) -> torch.Tensor:
        """The weight the forward multiplies by (on the weight format's grid)."""
        return self.formats.apply("weight", self.weight)

    def quantized_bias(self) -> torch.Tensor | None:
        return None if self.bias is None else self.formats.apply("bias", self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.formats
        y = nn.functional.linear(f.apply("data_in", x), self.quantized_weight(), self.quantized_bias())
        return f.apply("data_out", y)

    def extra_repr(self) -> str:
        d = self.formats.describe()
        return (f"{super().extra_repr()}, in={d['data_in']}, w={d['weight']}, b={d['bias']}, out={d['data_out']}, "
                f"{self.formats.rounding.value}, {self.formats.overflow.value}")
