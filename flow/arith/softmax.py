"""Integer softmax over the last dimension: max subtraction, ``int_exp``, an exact sum and one
reciprocal per row.

out_i = round(e_i * r / 2**(exp_frac + guard)) with r = floor(2**(exp_frac + out_frac + guard) / sum e),
so the RTL divides once per row and multiplies once per element. Against e_i / sum e (the integer
exps' own softmax) the error is at most 0.5 + 2**-guard output LSBs; against float softmax the
exp's error adds to it (tests pin both).
"""
from __future__ import annotations

import torch

from flow.arith.exp import DEFAULT_COEF_FRAC, int_exp
from flow.arith.roots import reciprocal_floor
from flow.formats.base import Rounding
from flow.formats.fixed import MAX_CODE_BITS, shift_right_round

DEFAULT_GUARD = 4


def int_softmax(codes: torch.Tensor, frac: int, out_frac: int, exp_frac: int | None = None,
                guard: int = DEFAULT_GUARD, coef_frac: int = DEFAULT_COEF_FRAC) -> torch.Tensor:
    """softmax(codes * 2**-frac) along the last dim as unsigned codes at ``out_frac`` (at most 2**out_frac)."""
    exp_frac = out_frac + guard if exp_frac is None else exp_frac
    recip_bits = exp_frac + out_frac + guard
    if recip_bits >= MAX_CODE_BITS:
        raise ValueError(f"softmax needs a {recip_bits}-bit reciprocal (exp_frac {exp_frac} + out_frac {out_frac} "
                         f"+ guard {guard}), over the {MAX_CODE_BITS}-bit limit; lower them")
    shifted = codes - codes.amax(dim=-1, keepdim=True)  # <= 0, one bit wider than the input
    exps = int_exp(shifted, frac, exp_frac, coef_frac)
    recip = reciprocal_floor(exps.sum(dim=-1, keepdim=True), recip_bits)
    return shift_right_round(exps * recip, exp_frac + guard, Rounding.HALF_UP)
