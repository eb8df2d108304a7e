"""Pack integer codes into the wide SystemVerilog parameters of the component library."""
from __future__ import annotations

from collections.abc import Iterable


def pack_codes(codes: Iterable[int], width: int) -> int:
    """Concatenate codes, element 0 in the least significant ``width`` bits (two's complement)."""
    mask, value = (1 << width) - 1, 0
    for index, code in enumerate(codes):
        if not -(1 << (width - 1)) <= code < (1 << width):
            raise ValueError(f"code {code} at index {index} does not fit in {width} bits")
        value |= (code & mask) << (index * width)
    return value


def sv_literal(value: int, bits: int) -> str:
    """A sized hexadecimal SystemVerilog literal, e.g. ``12'h0ab``."""
    if value < 0 or value >> bits:
        raise ValueError(f"{value} is not a {bits}-bit unsigned value")
    return f"{bits}'h{value:0{(bits + 3) // 4}x}"
