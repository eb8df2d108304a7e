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


MAX_LITERAL_BITS = 65_536  # Verilator refuses wider numbers ("exceeds implementation limit")
CHUNK_BITS = 16_384


def sv_literal(value: int, bits: int) -> str:
    """A sized hexadecimal SystemVerilog literal, e.g. ``12'h0ab``; beyond Verilator's literal
    limit, a concatenation of literals of CHUNK_BITS (most significant first, one per line)."""
    if value < 0 or value >> bits:
        raise ValueError(f"{value} is not a {bits}-bit unsigned value")
    if bits <= MAX_LITERAL_BITS:
        return f"{bits}'h{value:0{(bits + 3) // 4}x}"
    chunks = []
    for low in range(0, bits, CHUNK_BITS):
        width = min(CHUNK_BITS, bits - low)
        chunks.append(f"{width}'h{(value >> low) & ((1 << width) - 1):0{(width + 3) // 4}x}")
    return "{\n            " + ",\n            ".join(reversed(chunks)) + "}"
