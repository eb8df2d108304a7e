"""Minifloat: a small binary floating-point format with a sign bit, denormals and saturation.

Definition of ``MinifloatFormat(E, M, bias, ieee_like, nan_pattern)`` (``E = exponent_width``,
``M = mantissa_width``, ``bias`` default ``2**(E-1) - 1``):

- Code: the ``1 + E + M``-bit pattern ``sign | exponent field f | mantissa m`` as a non-negative
  int64 (bit ``E + M`` is the sign), the same bits as ml_dtypes / OCP / IEEE.
- Value: ``f == 0`` is a denormal, ``(-1)**sign * m/2**M * 2**(1 - bias)``; ``f >= 1`` is
  ``(-1)**sign * (1 + m/2**M) * 2**(f - bias)``.
- Reserved patterns: ``ieee_like=True`` reserves the all-ones exponent field (mantissa 0: inf,
  otherwise NaN), so the largest finite value has ``f = 2**E - 2`` (float8_e5m2).
  ``ieee_like=False`` (the "fn" formats) makes every field finite; with ``nan_pattern=True`` the
  single magnitude pattern ``f = 2**E - 1, m = 2**M - 1`` is NaN (float8_e4m3fn, max 448);
  with neither there is no NaN or inf (float6_e2m3fn max 7.5, float6_e3m2fn max 28,
  float4_e2m1fn max 6).
- Zero: code 0. ``quantize`` never produces negative zero (the sign bit alone): a value that
  rounds to zero gets code 0. The negative-zero code still dequantizes, to ``-0.0 == 0``.
- Rounding (on the signed value, at the grid of x's binade, ``2**(max(floor(log2|x|), 1 - bias) - M)``):
  ``half_even`` (the default: nearest, ties to the neighbour that is an even multiple of the
  grid step, i.e. an even mantissa as IEEE and ml_dtypes; with ``M = 0`` a tie between two
  powers goes up and the tie between zero and the smallest power goes to zero),
  ``half_up`` (ties towards +inf) or ``floor`` (towards -inf).
- Saturation: a value beyond the largest finite magnitude (inf included) becomes that magnitude
  with its sign. This differs from ml_dtypes' ``astype`` to float8_e4m3fn (NaN from 464 up) and
  float8_e5m2 (inf from 61440 up); its float6/float4 casts saturate too. Wherever ml_dtypes gives
  a finite value the two agree bit for bit (tested). ``overflow='wrap'`` is refused.
- Values are exact in float64 (checked), so ``quantize`` (an exact integer rounding of the split
  float) and ``dequantize`` are exact; ``fake_quantize`` has an identity (straight-through) gradient.
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
    round_to_grid,
    scale_by_power_of_two,
)
from flow.formats.fast_paths import (
    FLOAT32_MAX_EXPONENT,
    FLOAT32_MIN_EXPONENT,
    binade32,
    exponents_fit,
    pow2,
    round_integer,
    round_steps,
)
from flow.formats.table_keys import optional, refuse_unknown, required

MAX_ENUMERATED_BITS = 20


def _check_int(name: str, value: Any, minimum: int, fix: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}; {fix}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {name}={value}; {fix}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


@dataclass(frozen=True)
class MinifloatFormat(ElementFormat):
    """Sign, ``exponent_width`` exponent bits, ``mantissa_width`` mantissa bits (see the module docstring)."""

    exponent_width: int
    mantissa_width: int
    exponent_bias: int | None = None  # None: 2**(exponent_width - 1) - 1
    ieee_like: bool = False
    nan_pattern: bool = False
    kind: ClassVar[str] = "minifloat"

    def __post_init__(self) -> None:
        _check_int("exponent_width", self.exponent_width, 1, "pass 1 to 11 exponent bits")
        _check_int("mantissa_width", self.mantissa_width, 0, "pass 0 to 52 mantissa bits")
        _check_bool("ieee_like", self.ieee_like)
        _check_bool("nan_pattern", self.nan_pattern)
        if self.exponent_width > 11 or self.mantissa_width > 52:
            raise ValueError(f"exponent_width={self.exponent_width}, mantissa_width={self.mantissa_width} exceed "
                             f"float64's 11 and 52 bits; pass smaller widths (values must be exact in float64)")
        if self.exponent_bias is None:
            object.__setattr__(self, "exponent_bias", 2 ** (self.exponent_width - 1) - 1)
        elif not isinstance(self.exponent_bias, int) or isinstance(self.exponent_bias, bool):
            raise ValueError(f"exponent_bias must be an int or None, got {self.exponent_bias!r}")
        if self.ieee_like and self.exponent_width < 2:
            raise ValueError("exponent_width must be at least 2 when ieee_like=True (the all-ones field is "
                             "reserved); pass ieee_like=False or a wider exponent")
        if self.ieee_like and self.nan_pattern:
            raise ValueError("nan_pattern=True applies to ieee_like=False formats only (ieee_like already reserves "
                             "the all-ones exponent for inf/NaN); pass one of them")
        if self.nan_pattern and self.mantissa_width < 1:
            raise ValueError("nan_pattern=True needs mantissa_width >= 1 (with no mantissa the NaN pattern would "
                             "take the whole top binade); use ieee_like=True instead")
        if self.min_exponent < FLOAT64_MIN_EXPONENT or self.emax > FLOAT64_MAX_EXPONENT - 1:
            raise ValueError(f"exponent_bias={self.exponent_bias} puts values outside float64's range; pass a bias "
                             f"between {self._top_field - FLOAT64_MAX_EXPONENT + 1} "
                             f"and {1 - self.mantissa_width - FLOAT64_MIN_EXPONENT}")

    # ---- the value set ----
    @property
    def width(self) -> int:
        """Bits of a code: sign, exponent, mantissa."""
        return 1 + self.exponent_width + self.mantissa_width

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal binade, ``1 - bias`` (denormals share its grid)."""
        return 1 - self.exponent_bias

    @property
    def min_exponent(self) -> int:
        """Exponent of the finest grid step, the smallest denormal ``2**(emin - M)``."""
        return self.emin - self.mantissa_width

    @property
    def _top_field(self) -> int:
        return 2**self.exponent_width - (2 if self.ieee_like else 1)

    @property
    def _top_mantissa(self) -> int:
        return 2**self.mantissa_width - (2 if self.nan_pattern else 1)

    @property
    def emax(self) -> int:
        """Exponent of the largest finite binade (``floor(log2(max_value))``; OCP's emax_elem)."""
        return self._top_field - self.exponent_bias

    @property
    def max_value(self) -> float:
        """The largest finite magnitude."""
        return (1 + self._top_mantissa / 2**self.mantissa_width) * 2.0**self.emax

    def __str__(self) -> str:
        flags = ",ieee_like" if self.ieee_like else ",nan_pattern" if self.nan_pattern else ""
        return f"minifloat<e{self.exponent_width}m{self.mantissa_width},bias={self.exponent_bias}{flags}>"

    # ---- element codes (shared with the block formats, which pass a per-element scale exponent) ----
    def encode(self, v: torch.Tensor, shift: torch.Tensor, rounding: Rounding) -> torch.Tensor:
        """Codes of the float64 reals ``v * 2**-shift`` (int64 ``shift`` per element), exactly."""
        E, M = self.exponent_width, self.mantissa_width
        limit = scale_by_power_of_two(torch.tensor(self.max_value, dtype=torch.float64), shift)
        v = torch.minimum(torch.maximum(v, -limit), limit)  # saturate; exact (picks one of two floats)
        binade = torch.clamp(floor_log2(v) - shift, min=self.emin)
        q = binade - M  # the grid exponent at v's binade (denormals: emin - M)
        n = round_to_grid(v, q + shift, rounding)  # |n| <= 2**(M+1)
        negative, a = n < 0, n.abs()
        carry = a >> (M + 1)  # rounded up into the next binade
        a, q = a >> carry, q + carry
        normal = a >= 2**M
        field = torch.where(normal, q + M + self.exponent_bias, 0)
        mantissa = torch.where(normal, a - 2**M, a)
        code = (negative.long() << (E + M)) | (field << M) | mantissa
        return torch.where(a == 0, 0, code)

    def fake(self, v: torch.Tensor, shift: torch.Tensor | int, rounding: Rounding) -> torch.Tensor:
        """``decode(encode(v, shift, rounding)) * 2**shift`` in float64 arithmetic, for float64 ``v``
        holding float32/16 values (finite or infinite) and integer ``shift`` (an int or a tensor
        broadcasting against ``v``) whose grid exponents pass :func:`flow.formats.fast_paths.exponents_fit`."""
        M = self.mantissa_width
        if isinstance(shift, int):
            limit = self.max_value * 2.0**shift
            v = v.clamp(-limit, limit)
            g = (torch.frexp(v)[1] - 1).clamp(min=self.emin + shift) - M  # the grid exponent, absolute
        else:
            limit = self.max_value * pow2(shift)
            v = torch.minimum(torch.maximum(v, -limit), limit)
            g = torch.maximum(torch.frexp(v)[1] - 1, shift + self.emin) - M
        g = g.to(torch.int64)
        n = round_integer(v * pow2(-g), rounding)  # |n| <= 2**(M+1); v <= limit keeps n * 2**g <= limit
        return n * pow2(g) + 0.0  # + 0.0: a value rounded to zero is +0, as code 0

    def fast_exponents(self, low_shift: int = 0, high_shift: int = 0) -> bool:
        """Whether :meth:`fake` is exact for shifts in ``[low_shift, high_shift]``."""
        return exponents_fit(self.min_exponent + low_shift, self.emax + 1 + high_shift)

    def fake32(self, v: torch.Tensor, shift: torch.Tensor | int, scale: torch.Tensor | float,
               rounding: Rounding) -> torch.Tensor:
        """:meth:`fake` in float32 arithmetic, with ``scale = 2**shift`` (a float32 power of two, a
        float or a tensor broadcasting against ``v``; ``shift`` itself is not read), for float32 ``v`` such that
        :meth:`fast32_exponents` holds for the shifts and no nonzero ``|v|`` below ``2**-126`` lies at or
        above ``2**emin * scale`` (its binade is not read from its bits)."""
        M = self.mantissa_width
        limit = self.max_value * scale
        if isinstance(scale, float):
            v = v.clamp(-limit, limit)
            step = (binade32(v) * 2.0**-M).clamp(min=2.0 ** (self.emin - M) * scale)
        else:
            v = torch.minimum(torch.maximum(v, -limit), limit)
            step = torch.maximum(binade32(v) * 2.0**-M, 2.0 ** (self.emin - M) * scale)
        return round_steps(v / step, rounding, v) * step + 0.0  # + 0.0: zero is +0, as code 0

    def fast32_exponents(self, low_shift: int = 0, high_shift: int = 0) -> bool:
        """Whether :meth:`fake32` is exact for shifts in ``[low_shift, high_shift]`` (values, steps and
        ``2**shift`` are float32s, and integers up to ``2**(M+1)`` are exact)."""
        return (self.mantissa_width <= 23 and min(self.min_exponent, self.min_exponent + low_shift) >= FLOAT32_MIN_EXPONENT
                and low_shift >= FLOAT32_MIN_EXPONENT and high_shift <= FLOAT32_MAX_EXPONENT
                and max(self.emax, self.emax + high_shift) + 1 <= FLOAT32_MAX_EXPONENT + 1)

    def subnormal_safe(self, low_shift: int) -> bool:
        """Whether every float32 subnormal lies below ``2**(emin + shift)`` for shifts from ``low_shift``."""
        return self.emin + low_shift >= -126

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """The float64 values of codes (reserved patterns: inf or NaN)."""
        E, M = self.exponent_width, self.mantissa_width
        codes = codes.long()
        negative = ((codes >> (E + M)) & 1) == 1
        field = (codes >> M) & (2**E - 1)
        mantissa = codes & (2**M - 1)
        normal = field > 0
        integer = torch.where(normal, mantissa + 2**M, mantissa)
        exponent = torch.where(normal, field - self.exponent_bias, self.emin) - M
        value = scale_by_power_of_two(integer.to(torch.float64), exponent)
        value = torch.where(negative, -value, value)
        top = field == 2**E - 1
        if self.ieee_like:
            special = torch.where(mantissa == 0, torch.inf, torch.nan)
            value = torch.where(top, torch.where(negative, -special, special), value)
        elif self.nan_pattern:
            value = torch.where(top & (mantissa == 2**M - 1), torch.nan, value)
        return value

    # ---- the Format protocol (flow.formats.base) ----
    def values(self) -> torch.Tensor:
        """Every finite value, ascending, each once (zero once: the negative-zero code is left out)."""
        if self.width > MAX_ENUMERATED_BITS:
            raise ValueError(f"{self} has 2**{self.width} codes; enumerate formats of at most "
                             f"{MAX_ENUMERATED_BITS} bits")
        codes = torch.arange(2**self.width)
        codes = codes[codes != 1 << (self.width - 1)]
        value = self.decode(codes)
        return value[torch.isfinite(value)].sort().values

    def rtl_parameters(self, prefix: str) -> dict[str, int]:
        raise NotImplementedError(f"{self.kind} has no RTL components yet; emit fixed point")


# The OCP 8-bit floats and the OCP Microscaling element types, named as in ml_dtypes.
OCP_MINIFLOATS: dict[str, MinifloatFormat] = {
    "float8_e4m3fn": MinifloatFormat(4, 3, nan_pattern=True),
    "float8_e5m2": MinifloatFormat(5, 2, ieee_like=True),
    "float6_e2m3fn": MinifloatFormat(2, 3),
    "float6_e3m2fn": MinifloatFormat(3, 2),
    "float4_e2m1fn": MinifloatFormat(2, 1),
}


def minifloat_keys(table: dict[str, Any], prefix: str, kind: str, ieee_like: bool | None = None) -> MinifloatFormat:
    """The minifloat an operand's keys describe (``ieee_like`` None: read ``<prefix>_ieee_like``, default False)."""
    refuse_unknown(table, prefix)
    width = required(table, prefix, "width", kind)
    exponent_width = required(table, prefix, "exponent_width", kind)
    if not isinstance(width, int) or not isinstance(exponent_width, int) or width < exponent_width + 1:
        raise ValueError(f"{prefix}_width={width!r} must be an int of at least 1 + {prefix}_exponent_width "
                         f"({exponent_width!r}): the sign, exponent and mantissa bits")
    if ieee_like is None:
        ieee_like = optional(table, prefix, "ieee_like", False)
    return MinifloatFormat(exponent_width, width - 1 - exponent_width, optional(table, prefix, "exponent_bias", None),
                           ieee_like, optional(table, prefix, "nan_pattern", False))


@register_format("minifloat")
def minifloat_from_table(table: dict[str, Any], prefix: str) -> MinifloatFormat:
    """``<prefix>_width`` (all bits), ``_exponent_width``; optional ``_exponent_bias``, ``_ieee_like``,
    ``_nan_pattern``."""
    return minifloat_keys(table, prefix, "minifloat")


@register_format("minifloat_ieee")
def minifloat_ieee_from_table(table: dict[str, Any], prefix: str) -> MinifloatFormat:
    """MASE's ``minifloat_ieee``: the minifloat keys with ``ieee_like=True`` (all-ones exponent reserved)."""
    return minifloat_keys(table, prefix, "minifloat_ieee", True)


@register_format("minifloat_denorm")
def minifloat_denorm_from_table(table: dict[str, Any], prefix: str) -> MinifloatFormat:
    """MASE's ``minifloat_denorm``: the minifloat keys with ``ieee_like=False`` (every exponent finite)."""
    return minifloat_keys(table, prefix, "minifloat_denorm", False)
