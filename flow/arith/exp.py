"""Integer exp of non-positive fixed-point codes: I-BERT's second-order polynomial after range
reduction by ln 2 (Kim et al., 2021).

x = -z ln2 + p with p in (-ln2, 0], so exp(x) = exp(p) 2**-z, and exp(p) ~ A (p + B)**2 + C with
A = 0.3585, B = 1.353, C = 0.344. In integers: the input is shifted up to a working frac of at
least ``WORK_FRAC`` (so ln 2 and B keep their precision on coarse inputs), z is the floor division
by the constant ln 2 (the RTL multiplies by a reciprocal that is exact over the input range), A is
at ``coef_frac`` bits and C at work_frac + coef_frac bits (shifted up to the square's frac, so
every constant fits a 32-bit RTL parameter); the polynomial is exact, and
one rounding shift by z plus the frac difference gives the output. The error against float exp is the polynomial's
(under 0.33 % of exp(x) with the constants' rounding, on every 16-bit input tested) plus the constants' and the output's rounding; tests pin it
in output LSBs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from flow.formats.base import Rounding
from flow.formats.fixed import MAX_CODE_BITS, shift_right_round

EXP_A, EXP_B, EXP_C = 0.3585, 1.353, 0.344
MIN_EXP_FRAC = 3  # coarser inputs step by over a third of ln 2: exp jumps by 28 % or more
DEFAULT_COEF_FRAC = 14
WORK_FRAC = 12  # the range reduction and polynomial run at max(input frac, this)


@dataclass(frozen=True)
class ExpConstants:
    """The integer constants of ``int_exp`` for one input frac: what the RTL takes as parameters."""

    frac: int  # the input's
    work_frac: int  # the range reduction's: max(frac, WORK_FRAC)
    coef_frac: int
    ln2: int  # round(ln 2 * 2**work_frac)
    a: int  # round(A * 2**coef_frac)
    b: int  # round(B * 2**work_frac)
    c: int  # round(C * 2**(work_frac + coef_frac)), added shifted up by work_frac

    @property
    def poly_frac(self) -> int:
        """Frac of the polynomial's value: the square's 2 work_frac plus A's coef_frac."""
        return 2 * self.work_frac + self.coef_frac


def exp_constants(frac: int, coef_frac: int = DEFAULT_COEF_FRAC) -> ExpConstants:
    """The constants for input codes at ``frac``; a frac too coarse for ln 2 is a one-line error."""
    if frac < MIN_EXP_FRAC:
        raise ValueError(f"exp input frac {frac} is too narrow for the exp range: its step {2.0 ** -frac} is over a "
                         f"third of ln 2 = {math.log(2):.3f}; use an input frac >= {MIN_EXP_FRAC}")
    work_frac = max(frac, WORK_FRAC)
    poly_frac = 2 * work_frac + coef_frac
    if poly_frac + 3 > MAX_CODE_BITS:
        raise ValueError(f"exp at input frac {frac} and coef_frac {coef_frac} needs {poly_frac + 3} bits, "
                         f"over the {MAX_CODE_BITS}-bit limit; lower the input frac or coef_frac")
    return ExpConstants(frac, work_frac, coef_frac, ln2=round(math.log(2) * 2 ** work_frac),
                        a=round(EXP_A * 2 ** coef_frac), b=round(EXP_B * 2 ** work_frac),
                        c=round(EXP_C * 2 ** (work_frac + coef_frac)))


def int_exp(codes: torch.Tensor, frac: int, out_frac: int, coef_frac: int = DEFAULT_COEF_FRAC) -> torch.Tensor:
    """exp(codes * 2**-frac) as unsigned codes at ``out_frac``, for int64 codes <= 0."""
    k = exp_constants(frac, coef_frac)
    if not 0 <= out_frac <= k.poly_frac:
        raise ValueError(f"exp output frac {out_frac} must lie in [0, {k.poly_frac}] for input frac {frac}")
    if (codes > 0).any():
        raise ValueError("int_exp takes codes <= 0; subtract the row's maximum first")
    x = torch.bitwise_left_shift(codes, k.work_frac - frac)
    z = torch.div(-x, k.ln2, rounding_mode="floor")
    p = x + z * k.ln2  # in (-ln2, 0] at work_frac
    t = p + k.b
    poly = k.a * t * t + torch.bitwise_left_shift(torch.tensor(k.c), k.work_frac)  # exp(p) at poly_frac
    return shift_right_round(poly, z + (k.poly_frac - out_frac), Rounding.HALF_UP)
