"""Floating-point fast paths for ``fake_quantize`` of the non-fixed formats.

The exact paths (``dequantize(quantize(x))``) build int64 codes. For the float32, float16 and
bfloat16 inputs of training, the same values come out of float64 arithmetic on powers of two,
with no code construction, when every power of two involved stays in float64's normal range:

- ``x`` is exact in float64 and its lowest bit is at least ``2**-149``.
- Scaling by ``2**-g`` (``g`` in ``[FAST_MIN_EXPONENT, FAST_MAX_EXPONENT]``) is exact: the
  result's lowest bit stays at or above ``2**(-149 - g) >= 2**-1074`` and it does not overflow.
- Rounding a float64 to an integer (``torch.round``, ``torch.floor``, and half-up as
  ``floor(n) + (n - floor(n) >= 0.5)``, where ``n - floor(n)`` is exact) is exact.
- An integer times ``2**g`` is exact when it is on the format's (float64-exact) grid.

Powers of two are built from their bits (no ``pow``), so they are exact by construction. Each
format checks its own exponent range against these bounds (:func:`exponents_fit`) and falls back
to the exact path otherwise; the tests compare the two with ``torch.equal``.
"""
from __future__ import annotations

import torch

from flow.formats.base import Rounding

FAST_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
FAST_MIN_EXPONENT = -1000  # 2**-g must stay normal, and -149 - g >= -1074
FAST_MAX_EXPONENT = 900


def exponents_fit(low: int, high: int) -> bool:
    """Whether every grid exponent a format uses, in ``[low, high]``, is inside the fast range."""
    return FAST_MIN_EXPONENT <= low and high <= FAST_MAX_EXPONENT


def fast_input(x: torch.Tensor) -> bool:
    """Whether ``x`` may take a fast path (a training dtype, no NaN: NaN goes to the exact path,
    which refuses it)."""
    return x.dtype in FAST_DTYPES and not bool(torch.isnan(x).any())


def pow2(k: torch.Tensor) -> torch.Tensor:
    """``2.0**k`` in float64 for integer tensors ``k`` in ``[-1022, 1023]``, built from its bits."""
    return ((k.to(torch.int64) + 1023) << 52).view(torch.float64)


def round_integer(n: torch.Tensor, rounding: Rounding) -> torch.Tensor:
    """Float64 ``n`` rounded to an integer (exactly) with ``rounding`` on the signed value."""
    if rounding is Rounding.FLOOR:
        return torch.floor(n)
    if rounding is Rounding.HALF_UP:
        low = torch.floor(n)
        return low + ((n - low) >= 0.5).to(n.dtype)
    return torch.round(n)  # ties to even


def blocks(v: torch.Tensor, k: int) -> torch.Tensor:
    """``v`` (at least 1-d) zero-padded along its last dim and viewed as ``(..., n_blocks, k)``."""
    n = v.shape[-1]
    pad = (-n) % k
    if pad:
        v = torch.nn.functional.pad(v, (0, pad))
    return v.reshape(*v.shape[:-1], (n + pad) // k, k)


def unblocks(b: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of :func:`blocks` for a last dim of ``n``."""
    flat = b.reshape(*b.shape[:-2], -1)
    return flat if flat.shape[-1] == n else flat[..., :n]


# ---- float32 arithmetic (cheaper still) for formats whose every value and grid step is a float32 ----
# Every operation below is a correctly rounded IEEE operation whose exact result is a float32, so
# it is exact, except one: ``v / step`` underflows (to a subnormal or zero) when ``|v|`` is far
# below the step; :func:`round_steps` handles that case (the quotient is then below 2**-126 in
# magnitude, so half-way rounding gives zero either way, and floor gives -1 for negative ``v``).
FLOAT32_MIN_EXPONENT = -149  # 2**-149 is float32's smallest subnormal
FLOAT32_MAX_EXPONENT = 127
FLOAT32_TINY = 2.0**-126  # the smallest normal float32


def binade32(v: torch.Tensor) -> torch.Tensor:
    """``2**floor(log2|v|)`` for normal float32 ``v`` (0 for zero and subnormals), from the bits."""
    return (v.view(torch.int32) & 0x7F800000).view(torch.float32)


def round_steps(n: torch.Tensor, rounding: Rounding, v: torch.Tensor) -> torch.Tensor:
    """``n = v / step`` rounded to an integer with ``rounding``, exactly, even where the division underflowed."""
    if rounding is Rounding.FLOOR:
        low = torch.floor(n)
        return torch.where(v < 0, low.clamp(max=-1.0), low)  # an underflowed -0.0 still floors to -1
    return round_integer(n, rounding)


def has_subnormal(a: torch.Tensor) -> bool:
    """Whether non-negative float32 ``a`` holds a nonzero value below the smallest normal."""
    return bool(((a < FLOAT32_TINY) & (a > 0)).any())
