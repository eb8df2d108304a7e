"""Reading one operand's format keys from a MASE-style quantization table.

A builder registered with :func:`flow.formats.base.register_format` reads ``<prefix>_<suffix>``
keys (``data_in_width``, ``weight_block_size``, ...) through these helpers, so that

- a missing key is one line naming it (:class:`MissingKeyError` is both a KeyError, for callers
  that add their own hint from ``args[0]``, and a ValueError, for callers that report those);
- a key with the operand's prefix that no flow format reads (a typo) is refused, naming the
  nearest known key;
- every key is read with ``in``/``[]``/``get``, so callers that record the keys a builder reads
  (to refuse the rest) see them.
"""
from __future__ import annotations

import difflib
from typing import Any

# Every suffix some flow format reads; a prefixed key outside this set is a typo.
KNOWN_SUFFIXES = frozenset({
    "width", "frac_width", "signed",  # fixed
    "exponent_width", "exponent_bias", "ieee_like", "nan_pattern",  # minifloat, log
    "block_size", "exponent_bias_width",  # block formats
    "scaled", "threshold_factor",  # binary, ternary
})


class MissingKeyError(KeyError, ValueError):
    """A key the format needs is absent; ``args == (key, format kind)``."""

    def __str__(self) -> str:
        key, kind = self.args
        return f"{key} is missing; the {kind} format needs it in the quantization table"


def refuse_unknown(table: dict[str, Any], prefix: str) -> None:
    """Refuse ``<prefix>_*`` keys that no flow format reads, naming the nearest known one."""
    start = f"{prefix}_"
    for key in list(table.keys()):
        if key.startswith(start) and key[len(start):] not in KNOWN_SUFFIXES:
            near = difflib.get_close_matches(key[len(start):], sorted(KNOWN_SUFFIXES), n=1, cutoff=0.0)
            raise ValueError(f"unknown key {key!r}; did you mean {start + near[0]!r}?")


def required(table: dict[str, Any], prefix: str, suffix: str, kind: str) -> Any:
    """The value of ``<prefix>_<suffix>``; absent or None is a :class:`MissingKeyError`."""
    key = f"{prefix}_{suffix}"
    if key not in table or table[key] is None:
        raise MissingKeyError(key, kind)
    return table[key]


def optional(table: dict[str, Any], prefix: str, suffix: str, default: Any) -> Any:
    """The value of ``<prefix>_<suffix>``, or ``default`` when it is absent or None (MASE writes None)."""
    value = table.get(f"{prefix}_{suffix}")
    return default if value is None else value


def block_size(table: dict[str, Any], prefix: str, kind: str, default: int | None = None) -> int:
    """``<prefix>_block_size`` as one int: ``k``, ``[k]`` or MASE's ``[1, k]`` (blocks lie along the last dim)."""
    key = f"{prefix}_block_size"
    value = required(table, prefix, "block_size", kind) if default is None else optional(
        table, prefix, "block_size", default)
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return value[0]
        if len(value) == 2 and value[0] == 1:
            return value[1]
        raise ValueError(f"{key}={list(value)!r}: flow blocks along the last dimension only; "
                         f"give an int k, [k] or [1, k]")
    return value
