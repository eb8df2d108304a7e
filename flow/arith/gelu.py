"""Integer GELU: x/2 (1 + erf(x/sqrt 2)) with I-BERT's second-order erf (Kim et al., 2021).

erf(u) ~ sgn(u) [a (min(|u|, -b) + b)**2 + 1], a = -0.2888, b = -1.769. The 1/sqrt 2 folds into
the constants: erf(x/sqrt 2) ~ sgn(x) [a/2 (min(|x|, T) - T)**2 + 1] with T = -b sqrt 2, so the
integer form has no multiply by an irrational: T at the input's frac, a/2 at ``coef_frac`` bits,
one square, one product with x and one final cast. The erf polynomial's own error (about 0.02 at
worst) dominates; tests pin the error against float GELU in output LSBs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from flow.formats.base import Overflow, Rounding
from flow.formats.fixed import MAX_CODE_BITS, FixedFormat, cast_codes

ERF_A, ERF_B = -0.2888, -1.769
DEFAULT_COEF_FRAC = 14


@dataclass(frozen=True)
class GeluConstants:
    """The integer constants of ``int_gelu`` for one input format: the RTL's parameters."""

    frac: int
    coef_frac: int
    clip: int  # round(-b sqrt 2 * 2**frac): |x| beyond it has erf = +-1 (to the polynomial)
    half_a: int  # round(a / 2 * 2**coef_frac), negative

    @property
    def erf_frac(self) -> int:
        return 2 * self.frac + self.coef_frac

    @property
    def out_frac(self) -> int:
        """Frac of x (1 + erf) / 2 before the final cast."""
        return self.frac + self.erf_frac + 1


def gelu_constants(in_fmt: FixedFormat, coef_frac: int = DEFAULT_COEF_FRAC) -> GeluConstants:
    """The constants for ``in_fmt``; a product wider than int64 allows is a one-line error."""
    bits = in_fmt.width + 2 * in_fmt.frac + coef_frac + 2
    if bits > MAX_CODE_BITS:
        raise ValueError(f"GELU of {in_fmt} at coef_frac {coef_frac} needs {bits}-bit products, over the "
                         f"{MAX_CODE_BITS}-bit limit; narrow the input or lower coef_frac")
    return GeluConstants(in_fmt.frac, coef_frac, clip=round(-ERF_B * math.sqrt(2) * 2 ** in_fmt.frac),
                         half_a=round(ERF_A / 2 * 2 ** coef_frac))


def int_gelu(codes: torch.Tensor, in_fmt: FixedFormat, out_fmt: FixedFormat,
             coef_frac: int = DEFAULT_COEF_FRAC) -> torch.Tensor:
    """GELU of ``in_fmt`` codes as ``out_fmt`` codes (round half up, saturate)."""
    k = gelu_constants(in_fmt, coef_frac)
    t = codes.abs().clamp(max=k.clip) - k.clip  # in [-clip, 0]
    erf = torch.sign(codes) * (k.half_a * t * t + (1 << k.erf_frac))
    doubled = codes * ((1 << k.erf_frac) + erf)  # x (1 + erf) at frac + erf_frac, i.e. twice GELU
    return cast_codes(doubled, k.out_frac, out_fmt, Rounding.HALF_UP, Overflow.SATURATE)
