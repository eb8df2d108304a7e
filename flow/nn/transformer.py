"""The transformer's non-linear layers on fixed point: softmax, GELU and LayerNorm whose exact
path is flow.arith's integer kernels.

``forward`` is the fake-quant path used in training: the value is the integer kernel's (on the
input quantized to ``in_fmt``), the gradient is the float op's at that quantized input (a
straight-through estimator through the approximation, as I-BERT fine-tunes). ``forward_codes``
is the exact int64 path, the reference for the RTL.
"""
from __future__ import annotations

import torch
from torch import nn

from flow.arith import int_gelu, int_layer_norm, int_softmax
from flow.formats.fixed import FixedFormat, dequantize, fake_quantize, quantize


def _through(exact: torch.Tensor, smooth: torch.Tensor) -> torch.Tensor:
    """``exact``'s value with ``smooth``'s gradient."""
    return smooth + (exact.to(smooth.dtype) - smooth).detach()


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
        xq = fake_quantize(x, self.in_fmt)
        exact = dequantize(self.forward_codes(quantize(x.detach(), self.in_fmt)), self.out_fmt, x.dtype)
        return _through(exact, torch.softmax(xq, dim=-1))


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
        xq = fake_quantize(x, self.in_fmt)
        exact = dequantize(self.forward_codes(quantize(x.detach(), self.in_fmt)), self.out_fmt, x.dtype)
        return _through(exact, nn.functional.gelu(xq))


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
        xq = fake_quantize(x, self.in_fmt)
        weight, bias = fake_quantize(self.weight, self.affine_fmt), fake_quantize(self.bias, self.affine_fmt)
        exact = dequantize(self.forward_codes(quantize(x.detach(), self.in_fmt)), self.out_fmt, x.dtype)
        return _through(exact, nn.functional.layer_norm(xq, (self.features,), weight, bias, self.eps))
