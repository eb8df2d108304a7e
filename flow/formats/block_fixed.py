"""Block floating point ("block_fp"; MXINT when the scale is E8M0): blocks of integers sharing one
power-of-two scale.

Definition of ``BlockFixedFormat(width=m, block_size=k, exponent_width=w, exponent_bias)``:

- Layout, shared exponent, scale field and code packing: :mod:`flow.formats.block` (blocks of
  ``k`` along the last dim, partial last block, shared exponent ``floor(log2(max|x|)) - 0``
  clamped to the scale field, codes ``(scale field << m) | element bits``).
- Element: an ``m``-bit two's complement integer ``c`` with an implicit scale ``2**-(m-2)`` (one
  sign bit, one integer bit, ``m - 2`` fraction bits, as OCP's MXINT8 element), so its largest
  power of two is ``2**0`` (``emax_elem = 0``) and the block's largest element lands in
  ``[1, 2)`` before rounding. Element values: ``c * 2**-(m-2)`` for ``c`` in
  ``[-(2**(m-1) - 1), 2**(m-1) - 1]`` -- symmetric: ``quantize`` never produces
  ``c = -2**(m-1)`` (it would make re-quantizing move the block's scale and lose a bit of every
  other element); that pattern still dequantizes, to ``-2 * scale``.
- Block value: ``c * 2**(shared - (m-2))``.
- Rounding (on the signed value): ``half_even`` (default), ``half_up``, ``floor``; elements
  saturate at ``±(2**(m-1) - 1)`` (so the block max, rounded up to 2, becomes ``2 - 2**-(m-2)``).
- Zero: code of element 0; an all-zero block has scale field 0.
- MXINT8 (OCP Microscaling v1.0): :func:`mxint8`, i.e. ``m = 8``, ``k = 32``, E8M0 scale
  (``w = 8``, bias 127).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from flow.formats.base import Rounding, register_format
from flow.formats.block import BlockFormat
from flow.formats.exact import round_to_grid, scale_by_power_of_two
from flow.formats.fast_paths import (
    FLOAT32_MAX_EXPONENT,
    FLOAT32_MIN_EXPONENT,
    exponents_fit,
    pow2,
    round_integer,
    round_steps,
)
from flow.formats.table_keys import block_size, optional, refuse_unknown, required


@dataclass(frozen=True)
class IntElement:
    """An ``width``-bit two's complement integer with implicit scale ``2**-(width-2)``, symmetric range."""

    width: int

    def __post_init__(self) -> None:
        if not isinstance(self.width, int) or isinstance(self.width, bool) or not 2 <= self.width <= 32:
            raise ValueError(f"width must be an int from 2 to 32 (element bits), got width={self.width!r}; "
                             f"pass e.g. width=8 (MXINT8)")

    @property
    def frac(self) -> int:
        return self.width - 2

    @property
    def max_code(self) -> int:
        return 2 ** (self.width - 1) - 1

    @property
    def emax(self) -> int:
        return 0

    @property
    def min_exponent(self) -> int:
        return -self.frac - 1  # half an LSB

    def encode(self, v: torch.Tensor, shift: torch.Tensor, rounding: Rounding) -> torch.Tensor:
        """Element bit patterns of the float64 reals ``v * 2**-shift``, exactly (saturating)."""
        limit = scale_by_power_of_two(torch.tensor(self.max_code * 2.0**-self.frac, dtype=torch.float64), shift)
        v = torch.minimum(torch.maximum(v, -limit), limit)
        code = round_to_grid(v, shift - self.frac, rounding).clamp(-self.max_code, self.max_code)
        return code & (2**self.width - 1)

    def fake(self, v: torch.Tensor, shift: torch.Tensor, rounding: Rounding) -> torch.Tensor:
        """``decode(encode(v, shift, rounding)) * 2**shift`` in float64 arithmetic (int64 tensor
        ``shift`` broadcasting against ``v``, passing :meth:`fast_exponents`)."""
        limit = (self.max_code * 2.0**-self.frac) * pow2(shift)
        v = torch.minimum(torch.maximum(v, -limit), limit)
        n = round_integer(v * pow2(self.frac - shift), rounding).clamp(-self.max_code, self.max_code)
        return n * pow2(shift - self.frac) + 0.0  # + 0.0: zero is +0, as code 0

    def fast_exponents(self, low_shift: int, high_shift: int) -> bool:
        """Whether :meth:`fake` is exact for shifts in ``[low_shift, high_shift]``."""
        return exponents_fit(low_shift - self.frac - 1, high_shift + 1)

    def fake32(self, v: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, rounding: Rounding) -> torch.Tensor:
        """:meth:`fake` in float32 arithmetic, with ``scale = 2**shift`` (float32 powers of two
        broadcasting against float32 ``v``) passing :meth:`fast32_exponents`."""
        limit = (self.max_code * 2.0**-self.frac) * scale
        v = torch.minimum(torch.maximum(v, -limit), limit)
        step = scale * 2.0**-self.frac
        n = round_steps(v / step, rounding, v).clamp(-self.max_code, self.max_code)
        return n * step + 0.0  # + 0.0: zero is +0, as code 0

    def fast32_exponents(self, low_shift: int, high_shift: int) -> bool:
        """Whether :meth:`fake32` is exact for shifts in ``[low_shift, high_shift]``."""
        return (self.width <= 25 and low_shift - self.frac >= FLOAT32_MIN_EXPONENT
                and high_shift + 1 <= FLOAT32_MAX_EXPONENT)

    def subnormal_safe(self, low_shift: int) -> bool:
        """:meth:`fake32` reads no element's binade, so subnormal inputs are fine."""
        return True

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        codes = codes.long()
        signed = torch.where(codes > self.max_code, codes - 2**self.width, codes)
        return scale_by_power_of_two(signed.to(torch.float64), -self.frac)

    def values(self) -> torch.Tensor:
        return scale_by_power_of_two(torch.arange(-self.max_code, self.max_code + 1).to(torch.float64), -self.frac)


@dataclass(frozen=True)
class BlockFixedFormat(BlockFormat):
    """Blocks of ``block_size`` ``width``-bit integers along the last dim sharing a power-of-two scale."""

    width: int = 8
    block_size: int = 32
    exponent_width: int = 8
    exponent_bias: int | None = None  # None: 2**(exponent_width - 1) - 1 (E8M0: 127)
    kind: ClassVar[str] = "block_fp"

    def __post_init__(self) -> None:
        IntElement(self.width)  # validates width
        self._check_block()

    @property
    def element(self) -> IntElement:
        return IntElement(self.width)

    def __str__(self) -> str:
        return f"block_fp<int{self.width},block={self.block_size},e{self.exponent_width},bias={self.exponent_bias}>"


def mxint8(block_size: int = 32) -> BlockFixedFormat:
    """OCP Microscaling MXINT8: 32 INT8 elements (scale ``2**-6``) sharing an E8M0 exponent."""
    return BlockFixedFormat(width=8, block_size=block_size, exponent_width=8)


@register_format("block_fp")
def block_fp_from_table(table: dict[str, Any], prefix: str) -> BlockFixedFormat:
    """``<prefix>_width`` (element bits), ``_block_size``, optional ``_exponent_width`` (8) and ``_exponent_bias``."""
    refuse_unknown(table, prefix)
    return BlockFixedFormat(required(table, prefix, "width", "block_fp"), block_size(table, prefix, "block_fp"),
                            optional(table, prefix, "exponent_width", 8),
                            optional(table, prefix, "exponent_bias", None))


@register_format("mxint")
def mxint_from_table(table: dict[str, Any], prefix: str) -> BlockFixedFormat:
    """OCP MXINT: ``<prefix>_width`` (8 for MXINT8), optional ``_block_size`` (32); the scale is E8M0."""
    refuse_unknown(table, prefix)
    return BlockFixedFormat(required(table, prefix, "width", "mxint"), block_size(table, prefix, "mxint", 32), 8)
