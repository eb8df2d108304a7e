"""Block minifloat ("block_minifloat"; OCP MXFP8/MXFP6/MXFP4 with an E8M0 scale): minifloat
elements sharing one power-of-two scale per block.

Definition of ``BlockMinifloatFormat(element, block_size=k, exponent_width=w, exponent_bias)``:

- Layout, shared exponent, scale field and code packing: :mod:`flow.formats.block` (blocks of
  ``k`` along the last dim, partial last block, shared exponent
  ``floor(log2(max|x|)) - element.emax`` clamped to the scale field, codes
  ``(scale field << element.width) | element bit pattern``).
- Element: a :class:`~flow.formats.minifloat.MinifloatFormat` (its value set, rounding, zero and
  saturation; OCP v1.0 quantizes ``x / 2**shared`` to the element with saturation, which is what
  this does, so ``x`` in the block is ``element value * 2**shared``).
- Rounding: the element's modes (``half_even`` default, ``half_up``, ``floor``), exact.
- OCP MX configurations (:func:`mxfp`, registry name ``mxfp``): MXFP8 E4M3 (``float8_e4m3fn``,
  emax 8), MXFP8 E5M2 (``float8_e5m2``, emax 15), MXFP6 E2M3 (emax 2), MXFP6 E3M2 (emax 4),
  MXFP4 E2M1 (emax 2); block 32, E8M0 scale (``w = 8``, bias 127).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from flow.formats.base import register_format
from flow.formats.block import BlockFormat, element_of
from flow.formats.minifloat import OCP_MINIFLOATS, MinifloatFormat, minifloat_keys
from flow.formats.table_keys import block_size, optional, refuse_unknown, required

# OCP MX element types by (element width, element exponent width).
MX_ELEMENTS = {(8, 4): "float8_e4m3fn", (8, 5): "float8_e5m2", (6, 2): "float6_e2m3fn", (6, 3): "float6_e3m2fn",
               (4, 2): "float4_e2m1fn"}


@dataclass(frozen=True)
class BlockMinifloatFormat(BlockFormat):
    """Blocks of ``block_size`` minifloats along the last dim sharing a power-of-two scale."""

    element: MinifloatFormat
    block_size: int = 32
    exponent_width: int = 8
    exponent_bias: int | None = None  # None: 2**(exponent_width - 1) - 1 (E8M0: 127)
    kind: ClassVar[str] = "block_minifloat"

    def __post_init__(self) -> None:
        element_of(self.element, (MinifloatFormat,))
        self._check_block()

    def __str__(self) -> str:
        return f"block_minifloat<{self.element},block={self.block_size},e{self.exponent_width}>"


def mxfp(element: str, block_size: int = 32) -> BlockMinifloatFormat:
    """An OCP MX format by its element's ml_dtypes name, e.g. ``mxfp("float4_e2m1fn")`` is MXFP4."""
    if element not in OCP_MINIFLOATS:
        raise ValueError(f"element={element!r} is not an OCP MX element type; use one of {', '.join(OCP_MINIFLOATS)}")
    return BlockMinifloatFormat(OCP_MINIFLOATS[element], block_size, 8)


@register_format("block_minifloat")
def block_minifloat_from_table(table: dict[str, Any], prefix: str) -> BlockMinifloatFormat:
    """The minifloat keys (``<prefix>_width``, ``_exponent_width``, ...) for the element, ``_block_size``,
    optional ``_exponent_bias_width`` (the scale field's bits, 8)."""
    element = minifloat_keys(table, prefix, "block_minifloat")
    return BlockMinifloatFormat(element, block_size(table, prefix, "block_minifloat"),
                                optional(table, prefix, "exponent_bias_width", 8))


@register_format("mxfp")
def mxfp_from_table(table: dict[str, Any], prefix: str) -> BlockMinifloatFormat:
    """OCP MXFP: ``<prefix>_width`` and ``_exponent_width`` pick the element (8/4 is E4M3, 8/5 E5M2,
    6/2, 6/3, 4/2), optional ``_block_size`` (32); the scale is E8M0."""
    refuse_unknown(table, prefix)
    pair = (required(table, prefix, "width", "mxfp"), required(table, prefix, "exponent_width", "mxfp"))
    if pair not in MX_ELEMENTS:
        raise ValueError(f"{prefix}_width={pair[0]!r} with {prefix}_exponent_width={pair[1]!r} is not an OCP MX "
                         f"element; use one of {', '.join(f'{w}/{e}' for w, e in MX_ELEMENTS)}")
    return mxfp(MX_ELEMENTS[pair], block_size(table, prefix, "mxfp", 32))
