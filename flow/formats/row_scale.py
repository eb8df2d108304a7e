"""Per-row float32 scales for binary and ternary, packed into the element codes.

A "row" is the last dimension: each output neuron's weights of a Linear weight ``(out, in)``,
each token's features of activations ``(..., in)``; a 0-d tensor is one row of one element.
The scale of a row is a float64 mean rounded once to float32 (round to nearest even,
saturating at float32's largest finite value), and is packed above the element bits of every
code of that row: ``code = (float32 bits of the scale << element_bits) | element bits``, so a code
dequantizes on its own, exactly.
"""
from __future__ import annotations

import torch

FLOAT32_MAX = torch.finfo(torch.float32).max


def rows(v: torch.Tensor) -> torch.Tensor:
    """``v`` with at least one dimension (a 0-d tensor is one row of one element)."""
    return v.reshape(1) if v.dim() == 0 else v


def finite_row_sums(a: torch.Tensor, kind: str) -> torch.Tensor:
    """Row sums (keepdim) of non-negative float64 ``a``; an infinite sum is refused (the scale would be)."""
    total = a.sum(dim=-1, keepdim=True)
    if not torch.isfinite(total).all():
        raise ValueError(f"cannot quantize to {kind}: a row's sum of |x| is not finite (inf or huge inputs); "
                         f"clean the input")
    return total


def to_float32(scale: torch.Tensor) -> torch.Tensor:
    """A non-negative float64 scale rounded once to float32 (nearest even), saturating; as float64."""
    return scale.clamp(max=FLOAT32_MAX).to(torch.float32).to(torch.float64)


def pack(scale: torch.Tensor, element: torch.Tensor, element_bits: int) -> torch.Tensor:
    """``(float32 bits of scale << element_bits) | element``; ``scale`` is float32-exact and >= 0."""
    bits = scale.to(torch.float32).view(torch.int32).long()
    return (bits << element_bits) | element


def unpack_scale(codes: torch.Tensor, element_bits: int) -> torch.Tensor:
    """The float64 scale carried by packed codes."""
    return (codes.long() >> element_bits).to(torch.int32).view(torch.float32).to(torch.float64)
