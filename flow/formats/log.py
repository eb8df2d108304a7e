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
from flow.formats.fast import FLOAT32_MAX_EXPONENT, FLOAT32_MIN_EXPONENT, binade32, exponents_fit, pow2
from flow.formats.table import optional, refuse_unknown, required

MAX_ENUMERATED_BITS = 20


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
        """``decode(encode(v, shift, rounding)) * 2**shift`` in float64 arithmetic, for float64 ``v``
        holding float32/16 values (finite or infinite) and integer ``shift`` (an int or a tensor
        broadcasting against ``v``) passing :meth:`fast_exponents`."""
        sh = torch.as_tensor(shift, dtype=torch.int64)
        a = torch.minimum(v.abs(), pow2(sh + self.emax))  # saturate
        below = a < pow2(sh + self.emin)
        k = torch.where(below, sh + (self.emin - 1), torch.frexp(a)[1].to(torch.int64) - 1)  # absolute
        lo = torch.where(below, 0.0, pow2(k))
        hi = pow2(k + 1)
        mid = (lo + hi) / 2  # exact: 1.5 * 2**k or 2**(emin-1+shift)
        negative = v < 0
        if rounding is Rounding.FLOOR:
            up = negative & (a > lo)
        elif rounding is Rounding.HALF_UP:
            up = (a > mid) | ((a == mid) & ~negative)
        else:
            hi_field_even = (k + 1 + self.exponent_bias - sh) % 2 == 0
            up = (a > mid) | ((a == mid) & hi_field_even)
        r = torch.where(up, hi, lo)
        return torch.where(negative, -r, r) + 0.0  # + 0.0: zero is +0, as code 0

    def fast_exponents(self, low_shift: int = 0, high_shift: int = 0) -> bool:
        """Whether :meth:`fake` is exact for shifts in ``[low_shift, high_shift]``."""
        return exponents_fit(self.min_exponent + low_shift, self.emax + 1 + high_shift)

    def fake32(self, v: torch.Tensor, shift: torch.Tensor | int, scale: torch.Tensor | float,
               rounding: Rounding) -> torch.Tensor:
        """:meth:`fake` in float32 arithmetic, with ``scale = 2**shift`` (float32 powers of two, a
        float or a tensor broadcasting against float32 ``v``, as ``shift``), for shifts passing
        :meth:`fast32_exponents` and no nonzero ``|v|`` below ``2**-126`` at or above ``2**emin * scale``."""
        top = 2.0**self.emax * scale
        a = v.abs().clamp(max=top) if isinstance(scale, float) else torch.minimum(v.abs(), top)  # saturate
        edge = 2.0**self.emin * scale  # the smallest power
        below = a < edge
        binade = binade32(a)  # 2**k for the normal a in [2**k, 2**(k+1))
        lo = torch.where(below, 0.0, binade)
        hi = torch.where(below, edge, 2 * binade)
        mid = (lo + hi) / 2  # exact: 1.5 * 2**k or 2**(emin-1) * scale
        negative = v < 0
        if rounding is Rounding.FLOOR:
            up = negative & (a > lo)
        elif rounding is Rounding.HALF_UP:
            up = (a > mid) | ((a == mid) & ~negative)
        else:  # ties to the even field k + 1 + bias - shift (below: field 1 against 0, so down)
            k = (a.view(torch.int32) >> 23) - 127
            hi_field_even = ~below & ((k + (1 + self.exponent_bias) - shift) % 2 == 0)
            up = (a > mid) | ((a == mid) & hi_field_even)
        r = torch.where(up, hi, lo)
        return torch.where(negative, -r, r) + 0.0  # + 0.0: zero is +0, as code 0

    def fast32_exponents(self, low_shift: int = 0, high_shift: int = 0) -> bool:
        """Whether :meth:`fake32` is exact for shifts in ``[low_shift, high_shift]`` (every power
        and midpoint it forms is a float32)."""
        return (min(self.min_exponent, self.min_exponent + low_shift) >= FLOAT32_MIN_EXPONENT
                and low_shift >= FLOAT32_MIN_EXPONENT and high_shift <= FLOAT32_MAX_EXPONENT
                and max(self.emax, self.emax + high_shift) + 1 <= FLOAT32_MAX_EXPONENT)

    def subnormal_safe(self, low_shift: int) -> bool:
        """Whether every float32 subnormal lies below ``2**(emin + shift)`` for shifts from ``low_shift``."""
        return self.emin + low_shift >= -126

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
