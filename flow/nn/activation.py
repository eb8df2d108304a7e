"""Quantized activations with exact integer definitions: ReLU and leaky ReLU (slope 2**-k)."""
from __future__ import annotations

import torch
from torch import nn

from flow.formats.fixed import (
    FixedFormat,
    Rounding,
    fake_quantize,
    parse_rounding,
    shift_right_round,
)


class QuantReLU(nn.Module):
    """ReLU on fixed-point values: max(0, code); the format is unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return codes.clamp(min=0)


class QuantLeakyReLU(nn.Module):
    """Leaky ReLU with slope 2**-shift: negative codes are cast right by ``shift`` bits.

    The format of input and output is ``fmt``; the cast rounds with ``rounding`` and can
    never overflow, so the exact and fake-quant paths compute the same function.
    """

    def __init__(self, fmt: FixedFormat, shift: int = 3, rounding: Rounding | str = Rounding.HALF_UP):
        super().__init__()
        if shift < 1:
            raise ValueError(f"shift must be at least 1 (slope 2**-shift), got shift={shift}")
        self.fmt, self.shift, self.rounding = fmt, shift, parse_rounding(rounding)

    @property
    def negative_slope(self) -> float:
        return 2.0 ** -self.shift

    def extra_repr(self) -> str:
        return f"slope=2**-{self.shift}, fmt={self.fmt}, {self.rounding.value}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = fake_quantize(x * self.negative_slope, self.fmt, self.rounding)
        return torch.where(x >= 0, x, scaled)

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return torch.where(codes >= 0, codes, shift_right_round(codes, self.shift, self.rounding))
