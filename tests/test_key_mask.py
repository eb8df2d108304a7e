"""The key_mask op's reference against what Hugging Face BERT's additive mask does in flow's
integer reference (flow/passes/integer_ops.py: scores + mask, then QuantSoftmax's input
quantization): masked keys saturate to the softmax input format's lowest code."""
import random

import pytest
import torch

from flow.formats.fixed import FixedFormat
from flow.formats.fixed import dequantize as fixed_dequantize
from flow.nn import QuantSoftmax
from flow.ops.key_mask import key_mask_codes


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
