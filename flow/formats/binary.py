"""Binary ("binary"): bipolar values, the sign of x, optionally times a per-row mean magnitude.

Definition of ``BinaryFormat(scaled)``:

- Element: ``b = 1`` (value +1) where ``x >= 0`` and ``b = 0`` (value -1) where ``x < 0``; zero
  maps to +1 (the XNOR/popcount convention: bit 1 is +1).
- ``scaled=False``: the value set is ``{-1, +1}``; codes are the bits ``b`` (0 or 1).
- ``scaled=True`` (XNOR-Net, per output row): each row of the last dimension (see
  :mod:`flow.formats.row_scale`) has the scale ``s = mean(|x|)`` over the row (float64 sum divided
  by the row length, rounded once to float32), and the values are ``±s``; codes are
  ``(float32 bits of s << 1) | b``. An all-zero row has ``s = 0`` (every value 0).
- Rounding and overflow modes do not apply (validated, then ignored): the sign is exact and the
  value set has no range to overflow. Non-finite row sums are refused when scaled.
- ``values()``: ``[-1, 1]`` (the unit-scale set; scaled values are these times the row's ``s``).
- Monotone within one row of one tensor only (the scale depends on the whole row).
- ``fake_quantize`` has an identity (straight-through) gradient everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from flow.formats.base import Overflow, Rounding, parse_overflow, parse_rounding, register_format
from flow.formats.exact import float64_input, straight_through
from flow.formats.fast_paths import fast_input
from flow.formats.row_scale import finite_row_sums, pack, rows, to_float32, unpack_scale
from flow.formats.table_keys import optional, refuse_unknown


@dataclass(frozen=True)
class BinaryFormat:
    """Bipolar ``±1`` (sign of x, zero to +1), optionally times the row's mean ``|x|`` (``scaled``)."""

    scaled: bool = False
    kind: ClassVar[str] = "binary"

    def __post_init__(self) -> None:
        if not isinstance(self.scaled, bool):
            raise ValueError(f"scaled must be True or False, got {self.scaled!r}")

    def __str__(self) -> str:
        return f"binary<{'row-scaled' if self.scaled else 'unit'}>"

    def quantize(self, x: torch.Tensor, rounding: Rounding | str = Rounding.HALF_EVEN,
                 overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        """Bits ``b`` (``x >= 0``), with the row's float32 scale above them when scaled."""
        parse_rounding(rounding)  # validated; the modes do not apply
        parse_overflow(overflow)
        v = rows(float64_input(x, self.kind))
        bit = (v >= 0).long()
        if not self.scaled:
            return bit.reshape(x.shape)
        a = v.abs()
        scale = to_float32(finite_row_sums(a, self.kind) / v.shape[-1])
        return pack(scale, bit, 1).reshape(x.shape)

    def dequantize(self, codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Codes to ``±1`` or ``±s`` (exact in float32 and float64)."""
        sign = (2 * (codes.long() & 1) - 1).to(torch.float64)
        return (sign * unpack_scale(codes, 1) if self.scaled else sign).to(dtype)

    def cast(self, codes: torch.Tensor, source: Any, rounding: Rounding | str = Rounding.HALF_EVEN,
             overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        raise NotImplementedError(f"{self.kind} has no code-to-code cast; quantize the source's dequantized values")

    def fake_quantize(self, x: torch.Tensor, rounding: Rounding | str = Rounding.HALF_EVEN,
                      overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        """``dequantize(quantize(x))`` in x's dtype, with an identity gradient (computed without
        codes, with the same float64 row sums, for float32/16 inputs)."""
        parse_rounding(rounding)  # validated; the modes do not apply
        parse_overflow(overflow)
        return straight_through(x, lambda t: self._fake_quantize(t, rounding, overflow))

    def _fake_quantize(self, t: torch.Tensor, rounding: Rounding | str, overflow: Overflow | str) -> torch.Tensor:
        if not fast_input(t):
            return self.dequantize(self.quantize(t, rounding, overflow), t.dtype)
        if not self.scaled:
            return torch.where(t.detach() >= 0, 1.0, -1.0).to(t.dtype)
        v = rows(t.detach().to(torch.float64))
        scale = to_float32(finite_row_sums(v.abs(), self.kind) / v.shape[-1])
        return torch.where(v >= 0, scale, -scale).reshape(t.shape).to(t.dtype)  # = (+-1) * scale

    def values(self) -> torch.Tensor:
        """``[-1, 1]``: the unit-scale value set."""
        return torch.tensor([-1.0, 1.0], dtype=torch.float64)

    def rtl_parameters(self, prefix: str) -> dict[str, int]:
        raise NotImplementedError(f"{self.kind} has no RTL components yet; emit fixed point")


@register_format("binary")
def binary_from_table(table: dict[str, Any], prefix: str) -> BinaryFormat:
    """Optional ``<prefix>_scaled`` (False); ``<prefix>_width``, if given, must be 1."""
    refuse_unknown(table, prefix)
    width = optional(table, prefix, "width", 1)
    if width != 1:
        raise ValueError(f"{prefix}_width={width!r}, but a binary code is 1 bit; set {prefix}_width = 1 or drop it")
    return BinaryFormat(optional(table, prefix, "scaled", False))
