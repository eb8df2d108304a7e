"""key_mask: BERT's attention key mask on the scores stream (hw/rtl/key_mask.sv).

Hugging Face BERT adds ``(1 - mask) * finfo.min`` to the attention scores before the softmax;
QuantSoftmax's input quantization then saturates every masked key to the scores format's lowest
code, so its exp is 0. The hardware does the same directly: the scores of a sample arrive as rows
(one per query token) of ``seq`` elements (one per key token), the mask as ``seq`` bits (1 = a
real token), and every element of a masked column becomes the format's lowest code.

The exact reference is :func:`key_mask_codes`. Lowering a model's ``masked_fill`` / additive mask
to this op (a second model input) is not wired yet: see DESIGN.md.
"""
from __future__ import annotations

import torch

from flow.formats.fixed import FixedFormat


def key_mask_codes(scores: torch.Tensor, mask: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """``scores``: codes of ``fmt``, shape (..., rows, seq); ``mask``: 0/1, shape (..., seq), one per
    sample (broadcast over the rows). Masked columns (mask 0) become ``fmt.min_code``."""
    if scores.dtype != torch.int64:
        raise TypeError(f"scores must be int64 codes, got {scores.dtype}")
    keep = mask.to(torch.bool).unsqueeze(-2)
    return torch.where(keep, scores, torch.full_like(scores, fmt.min_code))
