"""The Format protocol methods shared by element formats that encode and decode float64 values
(minifloat and log): exact quantize through ``encode``, exact dequantize through ``decode``, and
fake quantization that takes the float32 or float64 fast path (flow.formats.fast_paths) when exact."""
from __future__ import annotations

from typing import Any

import torch

from flow.formats.base import Overflow, Rounding, parse_rounding
from flow.formats.exact import float64_input, saturate_only, straight_through
from flow.formats.fast_paths import fast_input


class ElementFormat:
    """Mixin: needs ``kind``, ``encode``, ``decode``, ``fast_exponents`` and ``fake`` from the
    format, and takes ``fake32`` (with ``fast32_exponents`` and ``subnormal_safe``) where it has one."""

    kind: str

    def quantize(self, x: torch.Tensor, rounding: Rounding | str = Rounding.HALF_EVEN,
                 overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        """Reals to int64 codes, exactly; see the format's module docstring for rounding and saturation."""
        rounding = parse_rounding(rounding)
        saturate_only(overflow, self.kind)
        v = float64_input(x, self.kind)
        return self.encode(v, torch.zeros_like(v, dtype=torch.int64), rounding)  # type: ignore[attr-defined]

    def dequantize(self, codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Codes to their values (exact when ``dtype`` holds them)."""
        return self.decode(codes).to(dtype)  # type: ignore[attr-defined]

    def cast(self, codes: torch.Tensor, source: Any, rounding: Rounding | str = Rounding.HALF_EVEN,
             overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        raise NotImplementedError(f"{self.kind} has no code-to-code cast yet; quantize the source's dequantized "
                                  f"float64 values instead")

    def fake_quantize(self, x: torch.Tensor, rounding: Rounding | str = Rounding.HALF_EVEN,
                      overflow: Overflow | str = Overflow.SATURATE) -> torch.Tensor:
        """``dequantize(quantize(x))`` in x's dtype, with an identity gradient (computed by
        :meth:`fake` in float64 when that is exact, see :mod:`flow.formats.fast_paths`)."""
        rounding = parse_rounding(rounding)
        saturate_only(overflow, self.kind)
        return straight_through(x, lambda t: self._fake_quantize(t, rounding, overflow))

    def _fake_quantize(self, t: torch.Tensor, rounding: Rounding, overflow: Overflow | str) -> torch.Tensor:
        fmt: Any = self
        if hasattr(fmt, "fake32") and fmt.fast32_exponents() and fmt.subnormal_safe(0) and fast_input(t):
            return fmt.fake32(t.detach().to(torch.float32), 0, 1.0, rounding).to(t.dtype)
        if fmt.fast_exponents() and fast_input(t):
            return fmt.fake(t.detach().to(torch.float64), 0, rounding).to(t.dtype)
        return self.dequantize(self.quantize(t, rounding, overflow), t.dtype)
