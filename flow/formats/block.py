"""The block layout and shared power-of-two scale common to block_fp, block_minifloat and block_log.

Layout: a tensor of shape ``(..., n)`` is cut along its LAST dimension into blocks of
``block_size`` consecutive elements (the input dimension of a Linear weight ``(out, in)`` and of
activations ``(..., in)``); blocks never mix across rows. When ``n`` is not a multiple of
``block_size`` the last block of each row is partial: it holds the ``n mod block_size``
remaining elements and its scale depends on those alone. A 0-d tensor is one block of one element.

Shared scale (OCP Microscaling v1.0, section 6.3): a block's shared exponent is
``floor(log2(max|x|)) - emax_elem`` (``emax_elem``: the exponent of the element format's largest
binade), clamped into the scale field's range; an all-zero block takes the smallest exponent.
Each element ``x`` is then quantized as ``x / 2**shared`` by the element format (its rounding,
saturating at its largest magnitude), so the block's values are element values times
``2**shared``.

Scale field (E8M0-style): ``exponent_width`` bits (8 for MX), bias default
``2**(exponent_width-1) - 1``; field ``f`` in ``[0, 2**exponent_width - 2]`` means the shared
exponent ``f - bias`` (E8M0: -127 to 127) and the all-ones field is reserved for NaN (a block
whose codes carry it dequantizes to NaN; ``quantize`` never produces it).

Codes: one int64 per element, self-contained: ``(scale field << element_width) | element code``,
where the element code is the element format's ``element_width``-bit pattern (two's complement
bits for block_fp). ``dequantize`` reads each element's value and scale from its own code.
"""
from __future__ import annotations

from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F

from flow.formats.base import Overflow, Rounding, parse_rounding
from flow.formats.exact import (
    FLOAT64_MAX_EXPONENT,
    FLOAT64_MIN_EXPONENT,
    float64_input,
    floor_log2,
    saturate_only,
    scale_by_power_of_two,
    straight_through,
)
from flow.formats.fast_paths import blocks, exponents_fit, fast_input, has_subnormal, pow2, unblocks

MAX_CODE_BITS = 62


class BlockElement(Protocol):
    """What a block format needs of its element format (MinifloatFormat and LogFormat provide it)."""

    @property
    def width(self) -> int: ...  # bits of an element code

    @property
    def emax(self) -> int: ...  # floor(log2(largest magnitude))

    @property
    def min_exponent(self) -> int: ...  # the finest power of two quantizing an element needs

    def encode(self, v: torch.Tensor, shift: torch.Tensor, rounding: Rounding) -> torch.Tensor: ...

    def decode(self, codes: torch.Tensor) -> torch.Tensor: ...

    def fake(self, v: torch.Tensor, shift: torch.Tensor, rounding: Rounding) -> torch.Tensor: ...  # may overwrite v

    def fast_exponents(self, low_shift: int, high_shift: int) -> bool: ...

    # optional float32 arithmetic: fake32(v, shift, scale, rounding), fast32_exponents(low, high),
    # subnormal_safe(low) (see MinifloatFormat)

    def values(self) -> torch.Tensor: ...


def _check_int(name: str, value: Any, low: int, high: int, fix: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an int from {low} to {high}, got {name}={value!r}; {fix}")


class BlockFormat:
    """The Format protocol for a block format; subclasses are frozen dataclasses with the fields
    ``block_size``, ``exponent_width``, ``exponent_bias`` and an ``element`` (field or property)."""

    kind: ClassVar[str]
    block_size: int
    exponent_width: int
    exponent_bias: int | None
    element: Any

    def _check_block(self) -> None:
        """Validate the block fields (call from ``__post_init__`` once the element is valid)."""
        _check_int("block_size", self.block_size, 1, 2**20, "pass e.g. block_size=32 (the MX block)")
        _check_int("exponent_width", self.exponent_width, 1, 16, "pass e.g. exponent_width=8 (E8M0)")
        if self.exponent_bias is None:
            object.__setattr__(self, "exponent_bias", 2 ** (self.exponent_width - 1) - 1)
        elif not isinstance(self.exponent_bias, int) or isinstance(self.exponent_bias, bool):
            raise ValueError(f"exponent_bias must be an int or None, got {self.exponent_bias!r}")
        if self.exponent_width + self.element.width > MAX_CODE_BITS:
            raise ValueError(f"exponent_width={self.exponent_width} plus {self.element.width} element bits exceed the "
                             f"{MAX_CODE_BITS} bits of an int64 code; pass a narrower scale or element")
        if (self.min_shared + self.element.min_exponent < FLOAT64_MIN_EXPONENT
                or self.max_shared + self.element.emax + 1 > FLOAT64_MAX_EXPONENT):
            raise ValueError(f"exponent_bias={self.exponent_bias} with exponent_width={self.exponent_width} puts "
                             f"values outside float64's range; pass a smaller scale field or the default bias")

    @property
    def min_shared(self) -> int:
        """The smallest shared exponent (scale field 0)."""
        return -self.exponent_bias

    @property
    def max_shared(self) -> int:
        """The largest shared exponent (the field below the reserved all-ones NaN field)."""
        return 2**self.exponent_width - 2 - self.exponent_bias

    def shared_exponents(self, v: torch.Tensor) -> torch.Tensor:
        """Per element of float64 ``v`` (last dim blocked), its block's shared exponent (int64)."""
        n, k = v.shape[-1], self.block_size
        padded = F.pad(v, (0, (-n) % k))  # zeros never change a block's max
        amax = padded.reshape(*v.shape[:-1], -1, k).abs().amax(dim=-1)
        natural = floor_log2(amax) - self.element.emax
        shared = torch.where(amax > 0, natural, self.min_shared).clamp(self.min_shared, self.max_shared)
        return shared.repeat_interleave(k, dim=-1)[..., :n]

    # ---- the Format protocol (flow.formats.base) ----
    def quantize(self, x: torch.Tensor, rounding: Rounding | str = Rounding.HALF_EVEN,
                 overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        """Reals to int64 codes ``(scale field << element_width) | element code``, exactly."""
        rounding = parse_rounding(rounding)
        saturate_only(overflow, self.kind)
        v = float64_input(x, self.kind)
        flat = v.reshape(1) if v.dim() == 0 else v
        big = torch.finfo(torch.float64).max
        flat = flat.clamp(-big, big)  # inf saturates like the largest float
        shared = self.shared_exponents(flat)
        element = self.element.encode(flat, shared, rounding)
        codes = ((shared + self.exponent_bias) << self.element.width) | element
        return codes.reshape(v.shape)

    def dequantize(self, codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Codes to ``element value * 2**(field - bias)`` (NaN for the reserved field)."""
        codes = codes.long()
        field = codes >> self.element.width
        value = scale_by_power_of_two(self.element.decode(codes & (2**self.element.width - 1)),
                                      field - self.exponent_bias)
        return torch.where(field == 2**self.exponent_width - 1, torch.nan, value).to(dtype)

    def cast(self, codes: torch.Tensor, source: Any, rounding: Rounding | str = Rounding.HALF_EVEN,
             overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        raise NotImplementedError(f"{self.kind} has no code-to-code cast yet; quantize the source's dequantized "
                                  f"float64 values instead")

    def fake_quantize(self, x: torch.Tensor, rounding: Rounding | str = Rounding.HALF_EVEN,
                      overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        """``dequantize(quantize(x))`` in x's dtype, with an identity gradient (computed with the
        element's ``fake32`` in float32, else its ``fake`` in float64, where that is exact; see
        :mod:`flow.formats.fast_paths`)."""
        rounding = parse_rounding(rounding)
        saturate_only(overflow, self.kind)
        return straight_through(x, lambda t: self._fake_quantize(t, rounding, overflow))

    def _fake_quantize(self, t: torch.Tensor, rounding: Rounding, overflow: Overflow | str) -> torch.Tensor:
        if not fast_input(t):
            return self.dequantize(self.quantize(t, rounding, overflow), t.dtype)
        if hasattr(self.element, "fake32"):
            result = self._fake_quantize32(t, rounding)
            if result is not None:
                return result
        fast = (exponents_fit(self.min_shared, self.max_shared)
                and self.element.fast_exponents(self.min_shared, self.max_shared))
        if not fast:
            return self.dequantize(self.quantize(t, rounding, overflow), t.dtype)
        v = t.detach().to(torch.float64)
        v = v.reshape(1) if v.dim() == 0 else v
        b = blocks(v, self.block_size)  # (..., n_blocks, block_size)
        big = torch.finfo(torch.float64).max
        amax = torch.maximum(b.amax(dim=-1, keepdim=True), -b.amin(dim=-1, keepdim=True))  # no |b| buffer
        amax = amax.clamp(max=big)  # inf saturates like the largest float
        natural = torch.frexp(amax)[1].to(torch.int64) - (1 + self.element.emax)
        shared = torch.where(amax > 0, natural, self.min_shared).clamp(self.min_shared, self.max_shared)
        return unblocks(self.element.fake(b, shared, rounding), v.shape[-1]).reshape(t.shape).to(t.dtype)

    def _fake_quantize32(self, t: torch.Tensor, rounding: Rounding) -> torch.Tensor | None:
        """The float32 fast path (the element's ``fake32``), or None where it does not apply: an
        infinite input, shared exponents outside the element's float32 range, or a subnormal input
        when the element would need its binade."""
        v = t.detach().to(torch.float32)
        v = v.reshape(1) if v.dim() == 0 else v
        b = blocks(v, self.block_size)  # (..., n_blocks, block_size)
        a = b.abs()
        amax = a.amax(dim=-1, keepdim=True)
        if amax.numel() == 0:
            return None
        natural = torch.frexp(amax)[1].to(torch.int64) - (1 + self.element.emax)
        shared = torch.where(amax > 0, natural, self.min_shared).clamp(self.min_shared, self.max_shared)
        shared = torch.where(torch.isfinite(amax), shared, FLOAT64_MAX_EXPONENT + 1)  # inf: refused below
        low, high = (int(e) for e in torch.stack(torch.aminmax(shared)))
        if high > FLOAT64_MAX_EXPONENT or not self.element.fast32_exponents(low, high):
            return None
        if not self.element.subnormal_safe(low) and has_subnormal(a):
            return None
        scale = pow2(shared).to(torch.float32)  # exact: shared >= -149
        return unblocks(self.element.fake32(b, shared, scale, rounding), v.shape[-1]).reshape(t.shape).to(t.dtype)

    def values(self) -> torch.Tensor:
        """The element value set at shared exponent 0 (scale 1), ascending; block values are these
        times ``2**shared`` for the block's shared exponent."""
        return self.element.values()

    def rtl_parameters(self, prefix: str) -> dict[str, int]:
        raise NotImplementedError(f"{self.kind} has no RTL components yet; emit fixed point")


def element_of(value: Any, kinds: tuple[type, ...]) -> None:
    """Refuse an element of the wrong format class in one line."""
    if not isinstance(value, kinds):
        names = " or ".join(kind.__name__ for kind in kinds)
        raise ValueError(f"element must be a {names}, got {type(value).__name__}; pass e.g. {kinds[0].__name__}(...)")

