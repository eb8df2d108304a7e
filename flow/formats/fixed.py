"""Fixed-point numeric contract shared by training, the exact reference and the RTL.

A code ``c`` of ``FixedFormat(width=W, frac=F, signed)`` means the value ``c * 2**-F``.
One cast function with two knobs (rounding, overflow) quantizes reals and moves codes
between fracs; see docs/DESIGN.md, "Numeric contract".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from flow.formats.base import Overflow, Rounding, parse_overflow, parse_rounding, register_format

__all__ = ["MAX_CODE_BITS", "FixedFormat", "Overflow", "Rounding", "cast_codes", "dequantize", "fake_quantize",
           "parse_overflow", "parse_rounding", "quantize", "shift_right_round"]

MAX_CODE_BITS = 62  # codes and accumulators live in int64 with one bit of headroom


@dataclass(frozen=True)
class FixedFormat:
    """Two's complement (or unsigned) fixed point: ``width`` bits, ``frac`` of them fractional."""

    width: int
    frac: int
    signed: bool = True
    kind: ClassVar[str] = "fixed"

    def __post_init__(self) -> None:
        if not isinstance(self.width, int) or isinstance(self.width, bool):
            raise ValueError(f"width must be an int, got {self.width!r}")
        if not isinstance(self.frac, int) or isinstance(self.frac, bool):
            raise ValueError(f"frac must be an int, got {self.frac!r}")
        if self.width <= 0:
            raise ValueError(f"width must be at least 1, got width={self.width}; pass a positive width")
        if self.width > MAX_CODE_BITS:
            raise ValueError(
                f"width={self.width} exceeds the {MAX_CODE_BITS}-bit limit of exact int64 codes; "
                f"use width <= {MAX_CODE_BITS}"
            )

    @property
    def min_code(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        """Value of one code step, ``2**-frac``."""
        return 2.0 ** -self.frac

    def __str__(self) -> str:
        kind = "s" if self.signed else "u"
        return f"fixed<{kind}{self.width}.{self.frac}>"

    # ---- the Format protocol (flow.formats.base) ----
    def quantize(self, x: torch.Tensor, rounding: Rounding | str = Rounding.HALF_UP,
                 overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        return quantize(x, self, rounding, overflow)

    def dequantize(self, codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return dequantize(codes, self, dtype)

    def cast(self, codes: torch.Tensor, source: FixedFormat, rounding: Rounding | str = Rounding.HALF_UP,
             overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        if not isinstance(source, FixedFormat):
            raise TypeError(f"a fixed-point cast reads fixed-point codes, not {type(source).__name__}")
        return cast_codes(codes, source.frac, self, rounding, overflow)

    def fake_quantize(self, x: torch.Tensor, rounding: Rounding | str = Rounding.HALF_UP,
                      overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        return fake_quantize(x, self, rounding, overflow)

    def values(self) -> torch.Tensor:
        if self.width > 20:
            raise ValueError(f"{self} has 2**{self.width} values; enumerate formats of at most 20 bits")
        return dequantize(torch.arange(self.min_code, self.max_code + 1), self, torch.float64)

    def rtl_parameters(self, prefix: str) -> dict[str, int]:
        return {f"{prefix}_WIDTH": self.width, f"{prefix}_FRAC": self.frac, f"{prefix}_SIGNED": int(self.signed)}


def _check_int64(codes: torch.Tensor) -> None:
    if codes.dtype != torch.int64:
        raise TypeError(f"codes must be an int64 tensor, got {codes.dtype}; convert with .long()")


def shift_right_round(
    codes: torch.Tensor, shift: int | torch.Tensor, rounding: Rounding | str
) -> torch.Tensor:
    """Divide int64 codes by ``2**shift`` (shift >= 0, scalar or per element), rounding; exact."""
    _check_int64(codes)
    rounding = parse_rounding(rounding)
    shift = torch.as_tensor(shift, dtype=torch.int64)
    if (shift < 0).any():
        raise ValueError("shift must be >= 0 here")
    s = shift.clamp(max=63)  # beyond 63 every int64 floors to 0 or -1
    q = torch.bitwise_right_shift(codes, s)  # arithmetic shift: floor
    if rounding is Rounding.FLOOR:
        return q
    rem = codes - torch.bitwise_left_shift(q, s)  # in [0, 2**s)
    half = torch.bitwise_left_shift(torch.ones_like(s), (s - 1).clamp(min=0))
    if rounding is Rounding.HALF_UP:
        up = rem >= half
    else:
        up = (rem > half) | ((rem == half) & (torch.bitwise_and(q, 1) == 1))
    rounded = q + (up & (s > 0)).long()
    return torch.where(shift > 63, 0, rounded)  # |code| < 2**62 is below half an LSB there


def apply_overflow(codes: torch.Tensor, fmt: FixedFormat, overflow: Overflow | str) -> torch.Tensor:
    """Bring int64 codes into ``fmt``'s range by clamping or two's complement wrapping."""
    _check_int64(codes)
    overflow = parse_overflow(overflow)
    if overflow is Overflow.SATURATE:
        return codes.clamp(fmt.min_code, fmt.max_code)
    modulus = 1 << fmt.width
    wrapped = torch.remainder(codes, modulus)  # in [0, 2**W)
    if fmt.signed:
        wrapped = torch.where(wrapped > fmt.max_code, wrapped - modulus, wrapped)
    return wrapped


def _shift_left_fit(
    codes: torch.Tensor, shift: torch.Tensor, fmt: FixedFormat, overflow: Overflow
) -> torch.Tensor:
    """Multiply codes by ``2**shift`` (shift >= 0) into ``fmt`` without int64 overflow."""
    if overflow is Overflow.WRAP:
        k = shift.clamp(max=fmt.width)  # bits shifted past the width vanish in the wrap
        low = torch.remainder(codes, torch.bitwise_left_shift(torch.ones_like(k), fmt.width - k))
        return apply_overflow(torch.bitwise_left_shift(low, k), fmt, overflow)
    k = shift.clamp(max=63)
    hi = torch.bitwise_right_shift(torch.full_like(k, fmt.max_code), k)  # largest code that fits
    lo = -torch.bitwise_right_shift(torch.full_like(k, -fmt.min_code), k)
    out = torch.bitwise_left_shift(torch.minimum(torch.maximum(codes, lo), hi), k)
    out = torch.where(codes > hi, fmt.max_code, out)
    return torch.where(codes < lo, fmt.min_code, out)


def _cast(
    codes: torch.Tensor, shift: torch.Tensor, to: FixedFormat, rounding: Rounding, overflow: Overflow
) -> torch.Tensor:
    """Codes times ``2**-shift`` (per-element int64 shift) rounded and fitted into ``to``."""
    codes, shift = torch.broadcast_tensors(codes, shift)
    right = apply_overflow(shift_right_round(codes, shift.clamp(min=0), rounding), to, overflow)
    left = _shift_left_fit(codes, (-shift).clamp(min=0), to, overflow)
    return torch.where(shift >= 0, right, left)


def cast_codes(
    codes: torch.Tensor,
    from_frac: int,
    to: FixedFormat,
    rounding: Rounding | str = Rounding.HALF_UP,
    overflow: Overflow | str = Overflow.SATURATE,
) -> torch.Tensor:
    """Re-express int64 codes at frac ``from_frac`` as codes of ``to``: round, then overflow."""
    _check_int64(codes)
    shift = torch.tensor(from_frac - to.frac, dtype=torch.int64)
    return _cast(codes, shift, to, parse_rounding(rounding), parse_overflow(overflow))


def quantize(
    x: torch.Tensor,
    fmt: FixedFormat,
    rounding: Rounding | str = Rounding.HALF_UP,
    overflow: Overflow | str = Overflow.SATURATE,
) -> torch.Tensor:
    """Round a real tensor to int64 codes of ``fmt``; exact for every finite float input.

    Each float is split exactly into an integer mantissa and a power of two, so quantizing
    is the same integer cast as :func:`cast_codes` (no rounding error, no overflow).
    """
    rounding, overflow = parse_rounding(rounding), parse_overflow(overflow)
    v = x.detach().to(torch.float64)
    if torch.isnan(v).any():
        raise ValueError("cannot quantize NaN; check the model for a diverged value")
    infinite = torch.isinf(v)
    if overflow is Overflow.WRAP and infinite.any():
        raise ValueError("cannot wrap an infinite value; use overflow='saturate' or clean the input")
    mantissa, exponent = torch.frexp(torch.where(infinite, 0.0, v))
    integer = torch.ldexp(mantissa, torch.tensor(53.0, dtype=torch.float64)).long()  # exact
    shift = (53 - exponent.long()) - fmt.frac  # value = integer * 2**-(53 - exponent)
    codes = _cast(integer, shift, fmt, rounding, overflow)
    codes = torch.where(infinite & (v > 0), fmt.max_code, codes)
    return torch.where(infinite & (v < 0), fmt.min_code, codes)


def dequantize(codes: torch.Tensor, fmt: FixedFormat, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Codes to real values ``code * 2**-frac`` (exact when ``dtype`` holds the code)."""
    return torch.ldexp(codes.to(dtype), torch.tensor(-fmt.frac, dtype=dtype))


def _fake_quantize_float(x: torch.Tensor, fmt: FixedFormat, rounding: Rounding) -> torch.Tensor:
    """Saturating quantize-dequantize in floating point, for formats narrow enough that every
    step is exact: scaling by a power of two, clamping to one code beyond the range, adding
    one half and rounding all stay below 2**(mantissa bits - 1). Equals the exact path."""
    work = torch.float32 if fmt.width <= 22 else torch.float64
    scale = 2.0 ** fmt.frac
    v = torch.clamp(x.to(work) * scale, fmt.min_code - 1, fmt.max_code + 1)
    if rounding is Rounding.FLOOR:
        v = torch.floor(v)
    elif rounding is Rounding.HALF_UP:
        v = torch.floor(v + 0.5)
    else:
        v = torch.round(v)  # ties to even
    return (torch.clamp(v, fmt.min_code, fmt.max_code) / scale).to(x.dtype)


def fast_path(x: torch.Tensor, fmt: FixedFormat, overflow: Overflow) -> bool:
    """Whether :func:`_fake_quantize_float` computes the exact result for this call."""
    return (overflow is Overflow.SATURATE and fmt.width <= 50 and x.dtype in (torch.float32, torch.float16,
                                                                             torch.bfloat16)
            and abs(fmt.frac) <= 60 and not torch.isnan(x).any())


class _FakeQuantize(torch.autograd.Function):
    """Quantize-dequantize forward, identity (straight-through) backward."""

    @staticmethod
    def forward(ctx, x, fmt, rounding, overflow):  # type: ignore[override]
        if fast_path(x, fmt, overflow):
            return _fake_quantize_float(x, fmt, rounding)
        return dequantize(quantize(x, fmt, rounding, overflow), fmt, x.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad, None, None, None


def fake_quantize(
    x: torch.Tensor,
    fmt: FixedFormat,
    rounding: Rounding | str = Rounding.HALF_UP,
    overflow: Overflow | str = Overflow.SATURATE,
) -> torch.Tensor:
    """Values on ``fmt``'s grid computed by :func:`quantize`, with straight-through gradients."""
    return _FakeQuantize.apply(x, fmt, parse_rounding(rounding), parse_overflow(overflow))


@register_format("fixed", "integer")
def fixed_from_table(table: dict[str, Any], prefix: str) -> FixedFormat:
    """``<prefix>_width``, ``<prefix>_frac_width`` and ``<prefix>_signed`` of a quantization table."""
    return FixedFormat(table[f"{prefix}_width"], table[f"{prefix}_frac_width"], table.get(f"{prefix}_signed", True))
