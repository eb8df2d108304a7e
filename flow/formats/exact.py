"""What the quantizers of the non-fixed formats share: exact arithmetic on float64 tensors seen
as dyadic rationals ``m * 2**e``, their input checks, and the straight-through estimator.

Every finite float64 is an integer times a power of two. Splitting it that way (``frexp``) is
exact, so rounding to any power-of-two grid is an integer shift
(:func:`flow.formats.fixed.shift_right_round`) with no float rounding on the way; that is what
makes ``quantize`` exact for every finite input.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from flow.formats.base import Overflow, Rounding, parse_overflow
from flow.formats.fixed import shift_right_round

FLOAT64_MIN_EXPONENT = -1074  # 2**-1074 is float64's smallest subnormal
FLOAT64_MAX_EXPONENT = 1023  # 2**1024 overflows float64


def float64_input(x: torch.Tensor, kind: str) -> torch.Tensor:
    """``x`` as a detached float64 tensor (exact for every float dtype); NaN is refused."""
    v = x.detach().to(torch.float64)
    if torch.isnan(v).any():
        raise ValueError(f"cannot quantize NaN to {kind}; check the model for a diverged value")
    return v


def saturate_only(overflow: Overflow | str, kind: str) -> None:
    """Formats with no two's complement wrap accept ``overflow='saturate'`` only."""
    if parse_overflow(overflow) is not Overflow.SATURATE:
        raise ValueError(f"overflow={Overflow(overflow).value!r} is not supported by {kind}, which saturates; "
                         f"use overflow='saturate'")


def split(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Finite float64 ``v`` as int64 ``m`` (``|m| < 2**53``, 0 for zero) and ``e`` with ``v == m * 2**e``."""
    mantissa, exponent = torch.frexp(v)
    m = torch.ldexp(mantissa, torch.tensor(53.0, dtype=torch.float64)).long()  # exact: 53-bit mantissas
    return m, exponent.long() - 53


def floor_log2(v: torch.Tensor) -> torch.Tensor:
    """``floor(log2(|v|))`` exactly, as int64, for finite nonzero float64 ``v`` (-1 where ``v == 0``)."""
    return torch.frexp(v)[1].long() - 1


def round_to_grid(v: torch.Tensor, q: torch.Tensor, rounding: Rounding) -> torch.Tensor:
    """``round(v / 2**q)`` as int64, exactly, with ``rounding`` on the signed value.

    ``v`` is finite float64, ``q`` an int64 exponent per element; ``|v| / 2**q`` must stay below
    ``2**62`` (callers clamp ``v`` to the format's range first).
    """
    m, e = split(v)
    shift = q - e
    right = shift_right_round(m, shift.clamp(min=0), rounding)
    left = torch.bitwise_left_shift(m, (-shift).clamp(min=0, max=62))  # exact under the bound above
    return torch.where(shift >= 0, right, left)


def power_of_two(exponent: torch.Tensor | int) -> torch.Tensor:
    """``2.0**exponent`` in float64, exact for exponents in float64's range."""
    return torch.ldexp(torch.ones((), dtype=torch.float64), torch.as_tensor(exponent, dtype=torch.float64))


def scale_by_power_of_two(values: torch.Tensor, exponent: torch.Tensor | int) -> torch.Tensor:
    """``values * 2**exponent`` in float64; exact when ``2**exponent`` and the product are in range."""
    return values.to(torch.float64) * power_of_two(exponent)


class _StraightThrough(torch.autograd.Function):
    """Forward: a quantize-dequantize function; backward: the identity (straight-through)."""

    @staticmethod
    def forward(ctx, x, forward):  # type: ignore[override]
        return forward(x)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad, None


def straight_through(x: torch.Tensor, forward: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``forward(x)`` (values on a format's grid) whose gradient w.r.t. ``x`` is the identity."""
    return _StraightThrough.apply(x, forward)
