"""The key_mask op's reference against what Hugging Face BERT's additive mask does in flow's
integer reference (flow/passes/integer_ops.py: scores + mask, then QuantSoftmax's input
quantization): masked keys saturate to the softmax input format's lowest code."""
import random

import pytest
import torch
from torch import nn

import flow
from flow.compiler.lower import LoweringError
from flow.formats.fixed import FixedFormat
from flow.formats.fixed import dequantize as fixed_dequantize
from flow.nn import QuantSoftmax
from flow.ops.key_mask import key_mask_codes
from tests.test_attention import QUANT, SEQ, D


@pytest.mark.parametrize("fmt", [FixedFormat(16, 8), FixedFormat(12, 6), FixedFormat(8, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_key_mask_equals_the_additive_mask_through_quant_softmax(fmt, dtype):
    rng = random.Random(fmt.width)
    samples, seq = 6, 10
    codes = torch.tensor([rng.randint(fmt.min_code, fmt.max_code) for _ in range(samples * seq * seq)]).view(
        samples, seq, seq)
    pads = [0, seq - 1, 3, 5, 1, 0]  # padded tokens a sample: none, all but one, ...
    mask = torch.tensor([[1] * (seq - pad) + [0] * pad for pad in pads])
    softmax = QuantSoftmax(fmt, 8)
    additive = (1 - mask[:, None, :].to(dtype)) * torch.finfo(dtype).min  # HF's extended mask
    scores = fixed_dequantize(codes, fmt, dtype)
    reference = softmax(scores + additive)
    hardware = fixed_dequantize(softmax.forward_codes(key_mask_codes(codes, mask, fmt)), softmax.out_fmt, dtype)
    assert torch.equal(reference, hardware)
    # a masked key's weight is exp(lowest - row max): 0 unless the row's real scores sit near the lowest
    masked = hardware[mask[:, None, :].expand_as(hardware) == 0]
    assert masked.numel() and (fmt.width < 16 or torch.all(masked == 0))


def test_key_mask_codes_takes_int64_codes():
    with pytest.raises(TypeError, match="int64"):
        key_mask_codes(torch.zeros(2, 2), torch.ones(2), FixedFormat(8, 4))


class MaskedAttention(nn.Module):
    """Single-head attention scores with a key mask, in HF's additive form or as masked_fill."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.q, self.k = nn.Linear(D, D), nn.Linear(D, D)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.q(x) @ self.k(x).transpose(-2, -1) / 4
        if self.form == "additive":
            scores = scores + (1 - mask[:, None, :]) * torch.finfo(scores.dtype).min
        else:
            scores = scores.masked_fill(mask[:, None, :] == 0, float("-inf"))
        return torch.softmax(scores, dim=-1)


@pytest.mark.parametrize("form", ["additive", "masked_fill"])
def test_a_key_mask_input_is_a_one_line_lowering_error_until_it_is_lowered(form):
    with pytest.raises(LoweringError) as error:
        flow.compile(MaskedAttention(form), (torch.randn(2, SEQ, D), torch.ones(2, SEQ)), quant=QUANT)
    assert "input 'mask' looks like an attention key mask (batch, sequence)" in str(error.value)
    assert "compile the model without the mask" in str(error.value)
    assert len(str(error.value).splitlines()) == 1
