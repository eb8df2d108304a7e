"""Exact integer square root and reciprocal: the two row-wide steps of LayerNorm and softmax.

``isqrt_floor`` is the restoring digit recurrence (one result bit per step, two radicand bits
consumed), which a sequential RTL block repeats one step per cycle; ``reciprocal_floor`` is
floor division of a power of two, which the RTL does as a restoring divider.
"""
from __future__ import annotations

import torch

from flow.formats.fixed import MAX_CODE_BITS


def _check_codes(values: torch.Tensor, name: str) -> None:
    if values.dtype != torch.int64:
        raise TypeError(f"{name} must be an int64 tensor, got {values.dtype}; convert with .long()")
    if (values < 0).any():
        raise ValueError(f"{name} must be >= 0, got {int(values.min())}")


def isqrt_floor(values: torch.Tensor) -> torch.Tensor:
    """floor(sqrt(v)) of every int64 v in [0, 2**62), by the restoring digit recurrence."""
    _check_codes(values, "isqrt_floor's input")
    if (values >= 1 << MAX_CODE_BITS).any():
        raise ValueError(f"isqrt_floor takes values below 2**{MAX_CODE_BITS}, got {int(values.max())}")
    remainder = values.clone()
    root = torch.zeros_like(values)
    for step in range(MAX_CODE_BITS // 2 - 1, -1, -1):
        trial = torch.bitwise_left_shift(root, 2 * step + 2) + (1 << (2 * step))  # ((2r+1)^2 - (2r)^2) 4**step
        take = remainder >= trial
        remainder = torch.where(take, remainder - trial, remainder)
        root = torch.where(take, 2 * root + 1, 2 * root)
    return root


def reciprocal_floor(divisors: torch.Tensor, bits: int) -> torch.Tensor:
    """floor(2**bits / d) for int64 d >= 1; d == 0 gives 0 (a row with nothing to divide)."""
    _check_codes(divisors, "reciprocal_floor's divisor")
    if not 0 <= bits < MAX_CODE_BITS:
        raise ValueError(f"reciprocal_floor takes 0 <= bits < {MAX_CODE_BITS}, got {bits}")
    quotient = torch.div(torch.full_like(divisors, 1 << bits), divisors.clamp(min=1), rounding_mode="floor")
    return torch.where(divisors == 0, 0, quotient)
