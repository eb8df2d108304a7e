"""Ternary ("ternary"): values ``{-s, 0, +s}`` with a per-row threshold (Ternary Weight Networks).

Definition of ``TernaryFormat(threshold_factor=f, scaled)``, per row of the last dimension
(see :mod:`flow.formats.row_scale`; TWN uses one threshold per layer, flow one per output row):

- Threshold: element ``x_i`` of a row of length ``n`` is nonzero exactly when
  ``|x_i| > f * mean_j |x_j|``, evaluated as ``n * |x_i| > f * sum_j |x_j|`` in float64 (exact
  whenever those products and the sum are; ties are zero). ``f`` lies in ``[0, 1)`` (TWN: 0.7),
  which keeps quantizing twice a no-op.
- Element: ``t_i = sign(x_i)`` where nonzero, else 0.
- ``scaled=True`` (default): the row's scale is ``s = mean of |x_i| over its nonzero elements``
  (float64 sum divided by their count, rounded once to float32; ``s = 0`` when none), the values
  are ``t_i * s``, and codes are ``(float32 bits of s << 2) | (t_i & 3)`` (element bits 1 for
  +1, 3 for -1, 0 for zero; 2 is not produced).
- ``scaled=False``: values ``t_i`` in ``{-1, 0, 1}``; codes are ``t_i`` itself.
- Zero: element 0 (never negative zero). Rounding and overflow modes do not apply (validated,
  then ignored). Non-finite row sums are refused.
- ``values()``: ``[-1, 0, 1]`` (the unit-scale set). Monotone within one row of one tensor only.
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
class TernaryFormat:
    """``{-s, 0, +s}``: zero below ``threshold_factor * mean|x|`` of the row, ``s`` the kept mean (``scaled``)."""

    threshold_factor: float = 0.7
    scaled: bool = True
    kind: ClassVar[str] = "ternary"

    def __post_init__(self) -> None:
        f = self.threshold_factor
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f < 1:
            raise ValueError(f"threshold_factor must be a number in [0, 1), got {f!r}; pass e.g. 0.7 (TWN)")
        if not isinstance(self.scaled, bool):
            raise ValueError(f"scaled must be True or False, got {self.scaled!r}")

    def __str__(self) -> str:
        return f"ternary<t={self.threshold_factor}{',row-scaled' if self.scaled else ''}>"

    def quantize(self, x: torch.Tensor, rounding: Rounding | str = Rounding.HALF_EVEN,
                 overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        """Elements ``t`` in {-1, 0, 1}, with the row's float32 scale above their 2 bits when scaled."""
        parse_rounding(rounding)  # validated; the modes do not apply
        parse_overflow(overflow)
        v = rows(float64_input(x, self.kind))
        a = v.abs()
        keep = a * v.shape[-1] > self.threshold_factor * finite_row_sums(a, self.kind)
        t = torch.where(keep, torch.where(v < 0, -1, 1), 0).long()
        if not self.scaled:
            return t.reshape(x.shape)
        count = keep.sum(dim=-1, keepdim=True)
        kept = torch.where(keep, a, 0.0).sum(dim=-1, keepdim=True)
        scale = to_float32(torch.where(count > 0, kept / count.clamp(min=1), 0.0))
        return pack(scale, t & 3, 2).reshape(x.shape)

    def dequantize(self, codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Codes to ``t`` or ``t * s`` (exact in float32 and float64)."""
        codes = codes.long()
        if not self.scaled:
            return codes.to(dtype)
        element = codes & 3
        t = torch.where(element == 3, -1, element).to(torch.float64)
        return (t * unpack_scale(codes, 2)).to(dtype)

    def cast(self, codes: torch.Tensor, source: Any, rounding: Rounding | str = Rounding.HALF_EVEN,
             overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        raise NotImplementedError(f"{self.kind} has no code-to-code cast; quantize the source's dequantized values")

    def fake_quantize(self, x: torch.Tensor, rounding: Rounding | str = Rounding.HALF_EVEN,
                      overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        """``dequantize(quantize(x))`` in x's dtype, with an identity gradient (computed without
        codes, with the same float64 sums, for float32/16 inputs)."""
        parse_rounding(rounding)  # validated; the modes do not apply
        parse_overflow(overflow)
        return straight_through(x, lambda t: self._fake_quantize(t, rounding, overflow))

    def _fake_quantize(self, t: torch.Tensor, rounding: Rounding | str, overflow: Overflow | str) -> torch.Tensor:
        if not fast_input(t):
            return self.dequantize(self.quantize(t, rounding, overflow), t.dtype)
        # In place on float64 buffers, with the mask as 1.0/0.0 (no torch.where, no bool tensor):
        # the same sums over the same values as the exact path, so the same bits.
        v = rows(t.detach().to(torch.float64))
        a = v.abs()
        threshold = self.threshold_factor * finite_row_sums(a, self.kind)
        keep = torch.mul(a, v.shape[-1]).gt_(threshold)  # 1.0 where n * |x| > f * sum |x|
        values = v.sign_().mul_(keep)  # t in {-1, 0, 1} (a signed zero where dropped)
        if self.scaled:
            count = keep.sum(dim=-1, keepdim=True)
            kept = a.mul_(keep).sum(dim=-1, keepdim=True)
            values.mul_(to_float32(torch.where(count > 0, kept / count.clamp(min=1), 0.0)))
        return values.add_(0.0).reshape(t.shape).to(t.dtype)  # + 0.0: zero is +0

    def values(self) -> torch.Tensor:
        """``[-1, 0, 1]``: the unit-scale value set."""
        return torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)

    def rtl_parameters(self, prefix: str) -> dict[str, int]:
        raise NotImplementedError(f"{self.kind} has no RTL components yet; emit fixed point")


@register_format("ternary")
def ternary_from_table(table: dict[str, Any], prefix: str) -> TernaryFormat:
    """Optional ``<prefix>_threshold_factor`` (0.7) and ``<prefix>_scaled`` (True); ``<prefix>_width``,
    if given, must be 2."""
    refuse_unknown(table, prefix)
    width = optional(table, prefix, "width", 2)
    if width != 2:
        raise ValueError(f"{prefix}_width={width!r}, but a ternary code is 2 bits; set {prefix}_width = 2 or drop it")
    return TernaryFormat(optional(table, prefix, "threshold_factor", 0.7), optional(table, prefix, "scaled", True))
