"""Integer LayerNorm over the last dimension: exact sums, an exact integer square root, one
reciprocal per row, the affine scale and shift as constants and one final cast.

With N features, S = sum q and V = N sum q**2 - S**2 = N**2 var (exact), the normalized value is
(N q_i - S) / sqrt(V + EPS) with EPS = round(eps N**2 2**(2 frac)), float LayerNorm's eps in codes.
root = floor(sqrt(V + EPS) 2**h) (``isqrt_floor`` of the sum shifted up by 2h, h = ``root_frac``
as large as int64 allows, up to 16) and r = floor(2**(norm_frac + h + g) / root) give
n_i = round((N q_i - S) r / 2**g) at ``norm_frac``, with g large enough that r's floor costs at
most a quarter LSB. Against float the error is root's floor (relative at most 2**-h / sqrt(V + EPS))
plus the roundings; tests pin it in output LSBs.
A row of equal values has V = 0 and normalizes to 0 (float gives 0 too, up to eps).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from flow.arith.roots import isqrt_floor, reciprocal_floor
from flow.formats.base import Overflow, Rounding
from flow.formats.fixed import MAX_CODE_BITS, FixedFormat, cast_codes, shift_right_round

DEFAULT_NORM_GUARD = 4  # norm_frac = out frac + this, unless given
MAX_ROOT_FRAC = 16


@dataclass(frozen=True)
class LayerNormConstants:
    """The integer constants of ``int_layer_norm`` for one row length and input format."""

    features: int
    frac: int
    eps: int  # eps N**2 2**(2 frac), rounded
    norm_frac: int
    guard: int  # r carries norm_frac + guard fractional bits
    root_frac: int  # root carries this many fractional bits

    @property
    def recip_bits(self) -> int:
        return self.norm_frac + self.root_frac + self.guard


def layer_norm_constants(features: int, in_fmt: FixedFormat, norm_frac: int, eps: float) -> LayerNormConstants:
    """The constants for rows of ``features`` ``in_fmt`` codes; sums over int64 are one-line errors."""
    if features < 1:
        raise ValueError(f"LayerNorm needs at least one feature, got {features}")
    centred_bits = in_fmt.width + features.bit_length() + 1  # |N q - S| < 2**centred_bits
    guard = centred_bits + 2
    square_bits = 2 * in_fmt.width + 2 * features.bit_length()
    if square_bits > MAX_CODE_BITS or norm_frac + guard + features.bit_length() + 2 > MAX_CODE_BITS:
        raise ValueError(f"LayerNorm over {features} {in_fmt} codes at norm_frac {norm_frac} exceeds the "
                         f"{MAX_CODE_BITS}-bit limit of exact sums; narrow the input or lower norm_frac")
    root_frac = min(MAX_ROOT_FRAC, (MAX_CODE_BITS - square_bits) // 2, MAX_CODE_BITS - 1 - norm_frac - guard)
    return LayerNormConstants(features, in_fmt.frac, eps=round(eps * features ** 2 * 4.0 ** in_fmt.frac),
                              norm_frac=norm_frac, guard=guard, root_frac=root_frac)


def int_layer_norm(codes: torch.Tensor, in_fmt: FixedFormat, weight: torch.Tensor, weight_frac: int,
                   bias: torch.Tensor, bias_frac: int, out_fmt: FixedFormat, eps: float = 1e-12,
                   norm_frac: int | None = None) -> torch.Tensor:
    """LayerNorm of ``in_fmt`` codes along the last dim, scaled by ``weight`` and shifted by ``bias``
    codes, as ``out_fmt`` codes (round half up, saturate)."""
    features = codes.shape[-1]
    norm_frac = out_fmt.frac + DEFAULT_NORM_GUARD if norm_frac is None else norm_frac
    k = layer_norm_constants(features, in_fmt, norm_frac, eps)
    if bias_frac > weight_frac + norm_frac:
        raise ValueError(f"LayerNorm bias frac {bias_frac} exceeds weight frac + norm_frac "
                         f"({weight_frac} + {norm_frac}); lower the bias frac or raise norm_frac")
    total = codes.sum(dim=-1, keepdim=True)
    spread = features * (codes * codes).sum(dim=-1, keepdim=True) - total * total  # N**2 var, >= 0
    root = isqrt_floor(torch.bitwise_left_shift(spread + k.eps, 2 * k.root_frac))
    recip = reciprocal_floor(root, k.recip_bits)
    normalized = shift_right_round((features * codes - total) * recip, k.guard, Rounding.HALF_UP)
    affine = weight * normalized + torch.bitwise_left_shift(bias, weight_frac + norm_frac - bias_frac)
    return cast_codes(affine, weight_frac + norm_frac, out_fmt, Rounding.HALF_UP, Overflow.SATURATE)
