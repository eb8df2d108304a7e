"""Operations that join two streams: the residual add and concatenation, exactly defined."""
from __future__ import annotations

import torch
from torch import nn

from flow.formats.base import Format, Overflow, Rounding, parse_overflow, parse_rounding
from flow.formats.fixed import FixedFormat, cast_codes


def add_sum_format(a: FixedFormat, b: FixedFormat) -> FixedFormat:
    """The exact common format of a + b: frac max(Fa, Fb), signed, one bit more than either
    operand aligned to it (unsigned operands gain a sign bit), so the sum never overflows."""
    frac = max(a.frac, b.frac)
    aligned = [f.width + (frac - f.frac) + (0 if f.signed else 1) for f in (a, b)]
    return FixedFormat(max(aligned) + 1, frac, True)


class QuantAdd(nn.Module):
    """y = cast(a + b): both operands are aligned exactly to their common frac and summed
    without loss, then cast once to ``out`` with ``rounding`` and ``overflow`` (the linear
    layer's rule: exact arithmetic, one rounding at the end)."""

    def __init__(self, a: Format, b: Format, out: Format, rounding: Rounding | str = Rounding.HALF_UP,
                 overflow: Overflow | str = Overflow.SATURATE):
        super().__init__()
        for what, fmt in (("first operand", a), ("second operand", b), ("output", out)):
            if not isinstance(fmt, FixedFormat):
                raise TypeError(f"the residual add's {what} must be fixed point, got {fmt}")
        self.a, self.b, self.out = a, b, out
        self.rounding, self.overflow = parse_rounding(rounding), parse_overflow(overflow)
        self.sum_format = add_sum_format(a, b)

    def extra_repr(self) -> str:
        return f"{self.a} + {self.b} -> {self.out}, {self.rounding.value}/{self.overflow.value}"

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.out.fake_quantize(a + b, self.rounding, self.overflow)

    def forward_codes(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        frac = self.sum_format.frac
        total = (a << (frac - self.a.frac)) + (b << (frac - self.b.frac))
        return cast_codes(total, frac, self.out, self.rounding, self.overflow)


class Concat(nn.Module):
    """Concatenation along the feature dimension; both operands already carry one format."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b], dim=-1)

    forward_codes = forward
