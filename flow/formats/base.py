"""What every number format provides, the cast modes shared by all of them, and the registry
that builds a format from a config table.

A format maps reals to integer codes and back. The exact reference and the RTL work on codes;
training works on fake-quantized floats (straight-through gradients) that equal the dequantized
codes. Modes (rounding, overflow) belong to the operation, not to the format.
"""
from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol, runtime_checkable

import torch


class Rounding(str, Enum):
    """How a cast drops precision."""

    FLOOR = "floor"  # towards -inf (an arithmetic shift)
    HALF_UP = "half_up"  # to nearest, ties towards +inf
    HALF_EVEN = "half_even"  # to nearest, ties to even (torch.round)

    @property
    def rtl_code(self) -> int:
        """The value of the SystemVerilog ``ROUNDING`` parameter (fixed by the component library)."""
        return ROUNDING_RTL_CODES[self]


class Overflow(str, Enum):
    """What a cast does with a value outside the format's range."""

    SATURATE = "saturate"  # clamp to the largest or smallest code
    WRAP = "wrap"  # two's complement modulo 2**width

    @property
    def rtl_code(self) -> int:
        """The value of the SystemVerilog ``OVERFLOW`` parameter (fixed by the component library)."""
        return OVERFLOW_RTL_CODES[self]


# Explicit values, not list positions: reordering the enums must not change emitted hardware.
ROUNDING_RTL_CODES = {Rounding.FLOOR: 0, Rounding.HALF_UP: 1, Rounding.HALF_EVEN: 2}
OVERFLOW_RTL_CODES = {Overflow.SATURATE: 0, Overflow.WRAP: 1}


def _parse(kind: type[Enum], value: Any, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{what}={value!r} is not a{'n' if what[0] in 'aeiou' else ''} {what} mode; use one of "
                         f"{', '.join(member.value for member in kind)}") from None


def parse_rounding(value: Rounding | str) -> Rounding:
    """Accept an enum member or its name; a bad name is a ValueError naming the choices."""
    return _parse(Rounding, value, "rounding")


def parse_overflow(value: Overflow | str) -> Overflow:
    """Accept an enum member or its name; a bad name is a ValueError naming the choices."""
    return _parse(Overflow, value, "overflow")


@runtime_checkable
class Format(Protocol):
    """A number format: the value set, the exact maps between reals and codes, and the RTL view."""

    kind: str  # the registry name, e.g. "fixed"

    def quantize(self, x: torch.Tensor, rounding: Rounding | str = ..., overflow: Overflow | str = ...) -> torch.Tensor:
        """Reals to int64 codes, exactly (no float rounding on the way)."""

    def dequantize(self, codes: torch.Tensor, dtype: torch.dtype = ...) -> torch.Tensor:
        """Codes to the reals they stand for."""

    def cast(self, codes: torch.Tensor, source: Any, rounding: Rounding | str = ...,
             overflow: Overflow | str = ...) -> torch.Tensor:
        """Codes of ``source`` re-expressed as codes of this format."""

    def fake_quantize(self, x: torch.Tensor, rounding: Rounding | str = ...,
                      overflow: Overflow | str = ...) -> torch.Tensor:
        """``dequantize(quantize(x))`` with straight-through gradients (training)."""

    def values(self) -> torch.Tensor:
        """Every representable value, ascending (small formats; tests enumerate it)."""

    def rtl_parameters(self, prefix: str) -> dict[str, int]:
        """The component parameters describing this format, e.g. IN_WIDTH, IN_FRAC, IN_SIGNED."""


FormatBuilder = Callable[[dict[str, Any], str], Format]
_REGISTRY: dict[str, FormatBuilder] = {}


def register_format(*names: str) -> Callable[[FormatBuilder], FormatBuilder]:
    """Register a builder ``(table, prefix) -> Format`` under config names (``quantization.*.name``)."""
    def decorate(builder: FormatBuilder) -> FormatBuilder:
        for name in names:
            _REGISTRY[name] = builder
        return builder
    return decorate


def format_names() -> list[str]:
    return sorted(_REGISTRY)


def format_from_table(name: str, table: dict[str, Any], prefix: str) -> Format:
    """The format a quantization table gives one operand (``prefix``: data_in, weight, bias, data_out).
    The built-in formats are registered by ``flow/formats/__init__.py``, which runs before this module."""
    if name not in _REGISTRY:
        raise ValueError(f"format {name!r} is not known; use one of {', '.join(format_names())}")
    return _REGISTRY[name](table, prefix)
