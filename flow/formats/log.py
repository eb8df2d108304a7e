"""Log (power-of-two) format: a sign and an exponent, plus an explicit zero.

Definition of ``LogFormat(W, bias)`` (``bias`` default ``2**(W-2) - 1``, MASE's default):

- Code: a ``W``-bit pattern ``sign | exponent field f`` (``W - 1`` field bits) as a non-negative
  int64; bit ``W - 1`` is the sign.
- Value: field ``f == 0`` is zero; ``f`` in ``[1, 2**(W-1) - 1]`` is ``(-1)**sign * 2**(f - bias)``.
  So the value set is ``{0} U {±2**e : emin <= e <= emax}`` with ``emin = 1 - bias`` and
  ``emax = 2**(W-1) - 1 - bias``. (MASE's log quantizer has no zero: its field 0 is ``2**-bias``;
  here field 0 is zero, so a pruned weight stays zero.)
- Zero: code 0; ``quantize`` never produces negative zero (sign bit with field 0), which
  dequantizes to ``-0.0 == 0``.
- Rounding: to the nearest *value* (not in the log domain): between ``2**k`` and ``2**(k+1)`` the
  midpoint is ``1.5 * 2**k``, and between 0 and ``2**emin`` it is ``2**(emin - 1)``. Modes act on
  the signed value: ``half_even`` (default: ties to the even exponent field; zero, field 0, counts
  as even, so the tie at ``2**(emin-1)`` goes to zero), ``half_up`` (ties towards +inf),
  ``floor`` (towards -inf). Nearest-value rounding keeps the absolute error at most half the gap
  to the neighbouring value; log-domain rounding (MASE) would round 1.45 up to 2.
- Saturation: magnitudes above ``2**emax`` (inf included) become ``±2**emax``; ``overflow='wrap'``
  is refused.
- ``fake_quantize`` has an identity (straight-through) gradient.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from flow.formats.base import Rounding, register_format
from flow.formats.element import ElementFormat
from flow.formats.exact import (
    FLOAT64_MAX_EXPONENT,
    FLOAT64_MIN_EXPONENT,
    floor_log2,
    power_of_two,
)
from flow.formats.fast_paths import exponents_fit
from flow.formats.table_keys import optional, refuse_unknown, required

MAX_ENUMERATED_BITS = 20
_MAGNITUDE = 0x7FFFFFFFFFFFFFFF  # float64 bit fields, as int64 masks
_EXPONENT = 0x7FF0000000000000
_MANTISSA = 0x000FFFFFFFFFFFFF
_SIGN = -0x8000000000000000


@dataclass(frozen=True)
class LogFormat(ElementFormat):
    """Sign and ``width - 1`` exponent-field bits; value ``±2**(field - bias)``, field 0 is zero."""

    width: int
    exponent_bias: int | None = None  # None: 2**(width - 2) - 1
    kind: ClassVar[str] = "log"

    def __post_init__(self) -> None:
        if not isinstance(self.width, int) or isinstance(self.width, bool) or not 2 <= self.width <= 12:
            raise ValueError(f"width must be an int from 2 to 12 (sign and exponent field), got width={self.width!r}; "
                             f"pass e.g. width=8")
        if self.exponent_bias is None:
            object.__setattr__(self, "exponent_bias", 2 ** (self.width - 2) - 1)
        elif not isinstance(self.exponent_bias, int) or isinstance(self.exponent_bias, bool):
            raise ValueError(f"exponent_bias must be an int or None, got {self.exponent_bias!r}")
        if self.min_exponent < FLOAT64_MIN_EXPONENT or self.emax > FLOAT64_MAX_EXPONENT - 1:
            raise ValueError(f"exponent_bias={self.exponent_bias} puts values outside float64's range; pass a bias "
                             f"between {self._top_field - FLOAT64_MAX_EXPONENT + 1} and {-FLOAT64_MIN_EXPONENT}")

    @property
    def _top_field(self) -> int:
        return 2 ** (self.width - 1) - 1

    @property
    def emin(self) -> int:
        """Exponent of the smallest nonzero magnitude (field 1)."""
        return 1 - self.exponent_bias

    @property
    def emax(self) -> int:
        """Exponent of the largest magnitude (the all-ones field); OCP's emax_elem."""
        return self._top_field - self.exponent_bias

    @property
    def min_exponent(self) -> int:
        """The finest exponent quantizing needs: the midpoint ``2**(emin - 1)`` between 0 and ``2**emin``."""
        return self.emin - 1

    @property
    def max_value(self) -> float:
        return 2.0**self.emax

    def __str__(self) -> str:
        return f"log<{self.width},bias={self.exponent_bias}>"

    # ---- element codes (shared with block_log, which passes a per-element scale exponent) ----
    def encode(self, v: torch.Tensor, shift: torch.Tensor, rounding: Rounding) -> torch.Tensor:
        """Codes of the float64 reals ``v * 2**-shift`` (int64 ``shift`` per element), exactly."""
        a = torch.minimum(v.abs(), power_of_two(self.emax + shift))  # saturate
        below = a < power_of_two(self.emin + shift)  # between 0 and the smallest power
        k = torch.where(below, self.emin - 1, floor_log2(a) - shift)  # a in [2**k, 2**(k+1)) (scaled)
        lo = torch.where(below, 0.0, power_of_two(k + shift))
        hi = power_of_two(k + 1 + shift)
        mid = (lo + hi) / 2  # exact: 1.5 * 2**k or 2**(emin-1), scaled
        negative = v < 0
        if rounding is Rounding.FLOOR:
            up = negative & (a > lo)
        elif rounding is Rounding.HALF_UP:
            up = (a > mid) | ((a == mid) & ~negative)
        else:
            hi_field_even = (k + 1 + self.exponent_bias) % 2 == 0
            up = (a > mid) | ((a == mid) & hi_field_even)
        field = torch.where(up, k + 1 + self.exponent_bias, torch.where(below, 0, k + self.exponent_bias))
        return torch.where(field == 0, 0, (negative.long() << (self.width - 1)) | field)

    def fake(self, v: torch.Tensor, shift: torch.Tensor | int, rounding: Rounding) -> torch.Tensor:
        """``decode(encode(v, shift, rounding)) * 2**shift`` for float64 ``v`` holding float32/16
        values (finite or infinite) and integer ``shift`` (an int or an int64 tensor broadcasting
        against ``v``) passing :meth:`fast_exponents`. ``v`` is scratch: its buffer is overwritten.

        Computed on the float64 bit patterns with integer arithmetic only (no ``where``, no
        comparisons, which cost ten times an add on the CPU): a magnitude ``m`` in
        ``[2**k, 2**(k+1))`` rounds to ``2**(k+1)`` exactly when adding ``2**51 - 1 + tie`` to its
        bits carries into the exponent field (``tie`` is 1 where a tie goes up), and masks made by
        an arithmetic shift of a difference select the region below ``2**emin``, whose only
        values are 0 and ``2**emin``."""
        bits = v.view(torch.int64)  # v's buffer is reused below: it holds the sign, then a mask
        sh = shift  # a Python int keeps the operations below on the scalar path
        edge = (sh + (self.emin + 1023)) << 52  # bits of the smallest power 2**(emin + shift)
        half_edge = edge - (1 << 52)  # the midpoint 2**(emin - 1 + shift) below it
        top = (sh + (self.emax + 1023)) << 52  # bits of the largest power
        # In place, on v and two fresh buffers: a fresh 8-byte-per-element tensor per operation
        # costs more in page faults than the operation itself.
        mag = bits & _MAGNITUDE
        mag.clamp_(max=top) if isinstance(top, int) else torch.minimum(mag, top, out=mag)  # saturate
        rounded = torch.empty_like(mag)
        if rounding is Rounding.HALF_EVEN:  # ties to the even field k + 1 + bias - shift
            torch.bitwise_right_shift(mag, 52, out=rounded)
            rounded.add_(self.exponent_bias + 1 - sh).bitwise_and_(1).add_((1 << 51) - 1)
        else:
            torch.bitwise_right_shift(bits, 63, out=rounded)  # all ones where v < 0
            if rounding is Rounding.FLOOR:  # towards -inf: magnitudes of negatives round up
                rounded.bitwise_and_(_MANTISSA)
            else:  # half_up, ties towards +inf: up for positives
                rounded.add_(1 << 51)
        rounded.add_(mag).bitwise_and_(_EXPONENT)  # the nearest power (wrong below 2**emin, fixed next)
        sign = bits.bitwise_and_(_SIGN)
        rounded.bitwise_or_(sign)
        # below 2**emin the values are 0 and 2**emin (ties to field 0, the even one)
        if rounding is Rounding.FLOOR:  # a negative nonzero becomes -2**emin
            up = sign.bitwise_and_(mag.neg_()).bitwise_right_shift_(63)
            mag.neg_()
        elif rounding is Rounding.HALF_UP:  # m >= mid for positives, m > mid for negatives
            up = sign.bitwise_right_shift_(63).add_(mag).neg_().add_(half_edge - 1).bitwise_right_shift_(63)
        else:  # m > mid
            up = sign.copy_(mag).neg_().add_(half_edge).bitwise_right_shift_(63)
        below = mag.sub_(edge).bitwise_right_shift_(63)  # all ones where m < 2**emin
        up.bitwise_and_(below).bitwise_and_(edge)
        rounded.bitwise_and_(below.bitwise_not_().bitwise_or_(_SIGN)).bitwise_or_(up)
        return rounded.view(torch.float64).add_(0.0)  # + 0.0: a zero is +0 (code 0), whatever v's sign

    def fast_exponents(self, low_shift: int = 0, high_shift: int = 0) -> bool:
        """Whether :meth:`fake` is exact for shifts in ``[low_shift, high_shift]``."""
        return exponents_fit(self.min_exponent + low_shift, self.emax + 1 + high_shift)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """The float64 values of codes."""
        codes = codes.long()
        negative = ((codes >> (self.width - 1)) & 1) == 1
        field = codes & self._top_field
        value = torch.where(field == 0, 0.0, power_of_two(field - self.exponent_bias))
        return torch.where(negative, -value, value)

    # ---- the Format protocol (flow.formats.base) ----
    def values(self) -> torch.Tensor:
        """``-2**emax, ..., -2**emin, 0, 2**emin, ..., 2**emax``."""
        codes = torch.arange(2**self.width)
        codes = codes[codes != 1 << (self.width - 1)]
        return self.decode(codes).sort().values

    def rtl_parameters(self, prefix: str) -> dict[str, int]:
        raise NotImplementedError(f"{self.kind} has no RTL components yet; emit fixed point")


@register_format("log")
def log_from_table(table: dict[str, Any], prefix: str) -> LogFormat:
    """``<prefix>_width`` (sign and exponent field) and optional ``<prefix>_exponent_bias``."""
    return log_keys(table, prefix, "log")


def log_keys(table: dict[str, Any], prefix: str, kind: str) -> LogFormat:
    """The log format an operand's keys describe (also the element of block_log)."""
    refuse_unknown(table, prefix)
    return LogFormat(required(table, prefix, "width", kind), optional(table, prefix, "exponent_bias", None))
