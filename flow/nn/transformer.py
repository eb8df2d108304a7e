"""The transformer's layers on fixed point: softmax, GELU and LayerNorm whose exact path is
flow.arith's integer kernels, and the matmul of two activations (attention's Q·Kᵀ and A·V).

``forward`` is the fake-quant path used in training: the value is the integer kernel's (on the
input quantized to ``in_fmt``), the gradient is the float op's at that quantized input (a
straight-through estimator through the approximation, as I-BERT fine-tunes). ``forward_codes``
is the exact int64 path, the reference for the RTL.
"""
from __future__ import annotations

import torch
from torch import nn

from flow.arith import int_gelu, int_layer_norm, int_softmax
from flow.formats.base import Overflow, Rounding, parse_overflow, parse_rounding
from flow.formats.fixed import MAX_CODE_BITS, FixedFormat, cast_codes, dequantize, fake_quantize, quantize


def _through(exact: torch.Tensor, smooth: torch.Tensor) -> torch.Tensor:
    """``exact``'s value with ``smooth``'s gradient (float's ``a + (b - a)`` can miss ``b`` by an
    ulp, so callers skip this where no gradient is taken and return ``exact`` itself)."""
    return smooth + (exact.to(smooth.dtype) - smooth).detach()


def _training() -> bool:
    """Whether a gradient will be taken: only then is the straight-through path built."""
    return torch.is_grad_enabled()


def _exporting() -> bool:
    """Whether torch.export is tracing: the module then traces as its float op, one node that
    lowering (flow.ops) maps back to this module and its formats; the integer path's
    data-dependent checks cannot be traced."""
    return torch.compiler.is_exporting()


class QuantSoftmax(nn.Module):
    """Softmax over the last dim of ``in_fmt`` codes, out as unsigned codes at ``out_frac``."""

    def __init__(self, in_fmt: FixedFormat, out_frac: int = 8):
        super().__init__()
        self.in_fmt, self.out_frac = in_fmt, out_frac
        self.out_fmt = FixedFormat(out_frac + 1, out_frac, signed=False)  # 1.0 is the largest value

    def extra_repr(self) -> str:
        return f"in={self.in_fmt}, out={self.out_fmt}"

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return int_softmax(codes, self.in_fmt.frac, self.out_frac)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _exporting():
            return torch.softmax(x, dim=-1)
        exact = dequantize(self.forward_codes(quantize(x.detach(), self.in_fmt)), self.out_fmt, x.dtype)
        return _through(exact, torch.softmax(fake_quantize(x, self.in_fmt), dim=-1)) if _training() else exact


class QuantGELU(nn.Module):
    """GELU (erf form) of ``in_fmt`` codes as ``out_fmt`` codes."""

    def __init__(self, in_fmt: FixedFormat, out_fmt: FixedFormat):
        super().__init__()
        self.in_fmt, self.out_fmt = in_fmt, out_fmt

    def extra_repr(self) -> str:
        return f"in={self.in_fmt}, out={self.out_fmt}"

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return int_gelu(codes, self.in_fmt, self.out_fmt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _exporting():
            return nn.functional.gelu(x)
        exact = dequantize(self.forward_codes(quantize(x.detach(), self.in_fmt)), self.out_fmt, x.dtype)
        return _through(exact, nn.functional.gelu(fake_quantize(x, self.in_fmt))) if _training() else exact


class QuantLayerNorm(nn.Module):
    """LayerNorm over the last dim: ``in_fmt`` codes in, the affine weight and bias in
    ``affine_fmt``, ``out_fmt`` codes out; ``eps`` is float LayerNorm's."""

    def __init__(self, features: int, in_fmt: FixedFormat, out_fmt: FixedFormat, affine_fmt: FixedFormat,
                 eps: float = 1e-12):
        super().__init__()
        self.features, self.in_fmt, self.out_fmt, self.affine_fmt, self.eps = features, in_fmt, out_fmt, affine_fmt, eps
        self.weight = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))

    @classmethod
    def from_float(cls, norm: nn.LayerNorm, in_fmt: FixedFormat, out_fmt: FixedFormat,
                   affine_fmt: FixedFormat) -> QuantLayerNorm:
        """The quantized twin of ``norm`` (over its last dimension only), sharing its weights' values."""
        if len(norm.normalized_shape) != 1:
            raise ValueError(f"LayerNorm over {tuple(norm.normalized_shape)}: flow normalizes over the last dimension "
                             "only; normalize over one dimension (the features)")
        layer = cls(norm.normalized_shape[0], in_fmt, out_fmt, affine_fmt, norm.eps)
        with torch.no_grad():
            layer.weight.copy_(norm.weight if norm.weight is not None else torch.ones(layer.features))
            layer.bias.copy_(norm.bias if norm.bias is not None else torch.zeros(layer.features))
        return layer.to(norm.weight.device if norm.weight is not None else "cpu")

    def extra_repr(self) -> str:
        return f"{self.features}, in={self.in_fmt}, out={self.out_fmt}, affine={self.affine_fmt}, eps={self.eps}"

    def weight_codes(self) -> torch.Tensor:
        return quantize(self.weight.detach(), self.affine_fmt)

    def bias_codes(self) -> torch.Tensor:
        return quantize(self.bias.detach(), self.affine_fmt)

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.shape[-1] != self.features:
            raise ValueError(f"LayerNorm over {self.features} features got rows of {codes.shape[-1]}; "
                             "normalize over the last dimension")
        frac = self.affine_fmt.frac
        return int_layer_norm(codes, self.in_fmt, self.weight_codes().to(codes.device), frac,
                              self.bias_codes().to(codes.device), frac, self.out_fmt, self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _exporting():
            return nn.functional.layer_norm(x, (self.features,), self.weight, self.bias, self.eps)
        exact = dequantize(self.forward_codes(quantize(x.detach(), self.in_fmt)), self.out_fmt, x.dtype)
        if not _training():
            return exact
        xq = fake_quantize(x, self.in_fmt)
        weight, bias = fake_quantize(self.weight, self.affine_fmt), fake_quantize(self.bias, self.affine_fmt)
        return _through(exact, nn.functional.layer_norm(xq, (self.features,), weight, bias, self.eps))


def attention_scale_shift(head_dim: int) -> int:
    """The shift s with 2**-s = 1/sqrt(head_dim), so attention's scaling is exact; a head size
    that is not a power of 4 has no such shift (a one-line error)."""
    shift = (head_dim.bit_length() - 1) // 2
    if head_dim < 1 or 4 ** shift != head_dim:
        raise ValueError(f"attention scale 1/sqrt({head_dim}) is not a power of two; flow scales exactly by a shift "
                         "only, so use a head size that is a power of 4 (16, 64, 256)")
    return shift


class QuantMatmul(nn.Module):
    """``a @ b`` of two activations (``a_fmt`` and ``b_fmt`` codes) times 2**-scale_shift: an exact
    integer accumulator, then one cast to ``out_fmt``. Attention's Q·Kᵀ/√d and A·V."""

    def __init__(self, a_fmt: FixedFormat, b_fmt: FixedFormat, out_fmt: FixedFormat, scale_shift: int = 0,
                 rounding: Rounding | str = Rounding.HALF_UP, overflow: Overflow | str = Overflow.SATURATE):
        super().__init__()
        if scale_shift < 0:
            raise ValueError(f"matmul scale_shift {scale_shift} must be >= 0 (a scale of 2**-shift)")
        self.a_fmt, self.b_fmt, self.out_fmt, self.scale_shift = a_fmt, b_fmt, out_fmt, scale_shift
        self.rounding, self.overflow = parse_rounding(rounding), parse_overflow(overflow)

    def extra_repr(self) -> str:
        return (f"a={self.a_fmt}, b={self.b_fmt}, out={self.out_fmt}, scale=2**-{self.scale_shift}, "
                f"{self.rounding.value}, {self.overflow.value}")

    @property
    def acc_frac(self) -> int:
        """The accumulator's frac: the products' frac plus the scale's shift (a shift is a reinterpretation)."""
        return self.a_fmt.frac + self.b_fmt.frac + self.scale_shift

    def accumulator_width(self, inner: int) -> int:
        """Bits of a signed accumulator that holds any sum of ``inner`` products of the formats' codes."""
        extremes = [a * b for a in (self.a_fmt.min_code, self.a_fmt.max_code)
                    for b in (self.b_fmt.min_code, self.b_fmt.max_code)]
        low, high = inner * min(extremes), inner * max(extremes)
        return max(low.bit_length(), high.bit_length()) + 1

    def forward_codes(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul of {tuple(a.shape)} by {tuple(b.shape)}: a's last dimension must equal b's "
                             "second to last; transpose b (Q·Kᵀ takes K transposed)")
        if self.accumulator_width(a.shape[-1]) > MAX_CODE_BITS:
            raise ValueError(f"matmul over {a.shape[-1]} products of {self.a_fmt} by {self.b_fmt} needs a "
                             f"{self.accumulator_width(a.shape[-1])}-bit accumulator, over {MAX_CODE_BITS}; narrow them")
        return cast_codes(a @ b, self.acc_frac, self.out_fmt, self.rounding, self.overflow)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        codes = self.forward_codes(quantize(a.detach(), self.a_fmt), quantize(b.detach(), self.b_fmt))
        exact = dequantize(codes, self.out_fmt, a.dtype)
        if not _training():
            return exact
        aq, bq = fake_quantize(a, self.a_fmt), fake_quantize(b, self.b_fmt)
        return _through(exact, (aq @ bq) * 2.0 ** -self.scale_shift)


class QuantTanh(nn.Module):
    """tanh of ``in_fmt`` codes as signed codes at ``out_frac``, by the integer softmax of the pair
    (x, -x): tanh x = 2 softmax(x, -x)_0 - 1, so it needs no kernel of its own (BERT's pooler)."""

    def __init__(self, in_fmt: FixedFormat, out_frac: int = 8):
        super().__init__()
        self.in_fmt, self.out_frac = in_fmt, out_frac
        self.out_fmt = FixedFormat(out_frac + 2, out_frac)  # [-1, 1] both reachable

    def extra_repr(self) -> str:
        return f"in={self.in_fmt}, out={self.out_fmt}"

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        pair = int_softmax(torch.stack([codes, -codes], dim=-1), self.in_fmt.frac, self.out_frac)[..., 0]
        return 2 * pair - (1 << self.out_frac)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _exporting():
            return torch.tanh(x)
        exact = dequantize(self.forward_codes(quantize(x.detach(), self.in_fmt)), self.out_fmt, x.dtype)
        return _through(exact, torch.tanh(fake_quantize(x, self.in_fmt))) if _training() else exact
