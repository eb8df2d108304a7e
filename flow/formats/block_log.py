"""Block log ("block_log"): power-of-two elements sharing one power-of-two scale per block.

Definition of ``BlockLogFormat(element, block_size=k, exponent_width=w, exponent_bias)``:

- Layout, shared exponent, scale field and code packing: :mod:`flow.formats.block` (blocks of
  ``k`` along the last dim, partial last block, shared exponent
  ``floor(log2(max|x|)) - element.emax`` clamped to the scale field, codes
  ``(scale field << element.width) | element code``).
- Element: a :class:`~flow.formats.log.LogFormat` (values ``0`` and ``±2**e``, ``emin <= e <= emax``;
  nearest-value rounding, saturation). The block's largest element becomes ``2**emax`` (or stays
  ``2**emax`` after saturating), so a block spans ``emax - emin`` binades below its max.
- Block value: ``element value * 2**shared``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from flow.formats.base import register_format
from flow.formats.block import BlockFormat, element_of
from flow.formats.log import LogFormat, log_keys
from flow.formats.table_keys import block_size, optional


@dataclass(frozen=True)
class BlockLogFormat(BlockFormat):
    """Blocks of ``block_size`` log elements along the last dim sharing a power-of-two scale."""

    element: LogFormat
    block_size: int = 32
    exponent_width: int = 8
    exponent_bias: int | None = None  # None: 2**(exponent_width - 1) - 1 (E8M0: 127)
    kind: ClassVar[str] = "block_log"

    def __post_init__(self) -> None:
        element_of(self.element, (LogFormat,))
        self._check_block()

    def __str__(self) -> str:
        return f"block_log<{self.element},block={self.block_size},e{self.exponent_width}>"


@register_format("block_log")
def block_log_from_table(table: dict[str, Any], prefix: str) -> BlockLogFormat:
    """The log keys (``<prefix>_width``, optional ``_exponent_bias``) for the element, ``_block_size``,
    optional ``_exponent_bias_width`` (the scale field's bits, 8)."""
    return BlockLogFormat(log_keys(table, prefix, "block_log"), block_size(table, prefix, "block_log"),
                          optional(table, prefix, "exponent_bias_width", 8))
