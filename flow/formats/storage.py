"""Storage cost of a format: bits per element, shared scales included (averaged over their block or row)."""
from __future__ import annotations

from typing import Any

FLOAT32_SCALE_BITS = 32  # binary and ternary keep one float32 scale per row


def bits_per_element(fmt: Any, row_length: int) -> float:
    """Bits one element costs in ``fmt`` for rows of ``row_length`` (a Linear's in_features):
    the element width, plus a block's shared exponent over its block, or a row's float32 scale over the row."""
    kind = getattr(fmt, "kind", None)
    if kind in ("binary", "ternary"):
        element = 1 if kind == "binary" else 2
        return element + (FLOAT32_SCALE_BITS / row_length if fmt.scaled else 0.0)
    if hasattr(fmt, "block_size"):
        return fmt.element.width + fmt.exponent_width / fmt.block_size
    return float(fmt.width)
