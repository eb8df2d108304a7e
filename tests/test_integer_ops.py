"""flow.nn's softmax, GELU and LayerNorm: the fake-quant value is the integer kernel's and the
gradient the float op's; the module pass swaps all of them into a BERT that still trains."""
import pytest
import torch
from torch import nn

from flow.formats.fixed import FixedFormat, dequantize, quantize
from flow.labs.integer_ops import END_TO_END, linear_config
from flow.nn import QuantGELU, QuantLayerNorm, QuantSoftmax, QuantTanh
from flow.passes import quantize_module
from flow.passes.integer_ops import IntegerOpsConfig, use_integer_ops
from tests.bert_helpers import padded_batch, tiny_bert

FMT = FixedFormat(16, 8)


def _layer_norm() -> tuple[nn.LayerNorm, QuantLayerNorm]:
    norm = nn.LayerNorm(24)
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.3)
        norm.bias.normal_(0.0, 0.3)
    return norm, QuantLayerNorm.from_float(norm, FMT, FMT, FixedFormat(16, 10))


def _softmax():
    return QuantSoftmax(FMT, 8), lambda x: torch.softmax(x, -1)


def _gelu():
    return QuantGELU(FMT, FMT), nn.functional.gelu


def _norm():
    _, quant = _layer_norm()
    weight, bias = (dequantize(quant.weight_codes(), quant.affine_fmt), dequantize(quant.bias_codes(), quant.affine_fmt))
    return quant, lambda x: nn.functional.layer_norm(x, (24,), weight, bias, quant.eps)


@pytest.mark.parametrize("make", [_softmax, _gelu, _norm])
def test_value_is_the_integer_kernel_and_gradient_the_float_op(make):
    torch.manual_seed(0)
    module, float_op = make()
    x = (torch.randn(5, 24) * 4).requires_grad_()
    y = module(x)
    codes = module.forward_codes(quantize(x.detach(), FMT))
    assert torch.equal(y.detach(), dequantize(codes, module.out_fmt))
    # float and integer agree to a few output LSBs, so the difference is the kernel's approximation
    xq = dequantize(quantize(x.detach(), FMT), FMT)
    assert (y.detach() - float_op(xq).detach()).abs().max() <= 0.05
    weights = torch.randn(5, 24)
    (y * weights).sum().backward()
    xs = xq.clone().requires_grad_()
    (float_op(xs) * weights).sum().backward()
    assert torch.allclose(x.grad, xs.grad, atol=1e-6)


def test_layer_norm_over_two_dimensions_is_a_one_line_error():
    with pytest.raises(ValueError, match="last dimension only") as caught:
        QuantLayerNorm.from_float(nn.LayerNorm((4, 8)), FMT, FMT, FMT)
    assert "\n" not in str(caught.value)


def test_the_pass_swaps_every_layer_norm_gelu_and_softmax_of_a_bert():
    model = tiny_bert().eval()
    batch = padded_batch()
    with torch.no_grad():
        before = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    report = use_integer_ops(model, IntegerOpsConfig())
    assert len(report.layer_norms) == 1 + 2 * model.config.num_hidden_layers
    assert len(report.gelus) == len(report.softmaxes) == model.config.num_hidden_layers
    assert not any(isinstance(m, nn.LayerNorm) for m in model.modules())
    with torch.no_grad():
        after = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert not torch.equal(before, after) and (before - after).abs().max() < 0.05
    model.train()
    out = model(**batch)
    out.loss.backward()
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert model.bert.embeddings.LayerNorm.weight.grad.abs().sum() > 0


def test_the_softmax_sees_the_padding_mask():
    model = tiny_bert().eval()
    use_integer_ops(model)
    batch = padded_batch()
    seen = {}
    softmax = model.bert.encoder.layer[0].attention.self.flow_softmax
    softmax.register_forward_hook(lambda module, args, out: seen.setdefault("weights", out))
    with torch.no_grad():
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    padded = batch["attention_mask"][1] == 0
    assert torch.equal(seen["weights"][1, :, :, padded], torch.zeros_like(seen["weights"][1, :, :, padded]))


def test_a_model_without_the_ops_is_a_one_line_error():
    with pytest.raises(ValueError, match="pass a Hugging Face BERT"):
        use_integer_ops(nn.Sequential(nn.Linear(4, 4), nn.ReLU()))


def test_tanh_through_the_integer_softmax_pair_on_every_input():
    tanh = QuantTanh(FixedFormat(16, 8), 8)
    codes = torch.arange(-(1 << 15), 1 << 15)
    got = tanh.forward_codes(codes)
    error = (got.double() - torch.tanh(codes.double() / 256) * 256).abs()
    assert error.max() <= 1.5 and error.mean() <= 0.02  # twice the softmax's error, in output LSBs
    assert (got.min(), got.max()) == (-256, 256)


@pytest.mark.parametrize("make", [
    lambda: QuantSoftmax(FixedFormat(16, 8), 8),
    lambda: QuantGELU(FixedFormat(16, 8), FixedFormat(16, 8)),
    lambda: QuantTanh(FixedFormat(12, 6), 8),
    lambda: QuantLayerNorm(16, FixedFormat(16, 8), FixedFormat(16, 8), FixedFormat(16, 10)),
])
def test_without_a_gradient_the_forward_is_the_exact_path_itself(make):
    """a + (b - a) can miss b by an ulp in float; evaluation returns the codes' values exactly."""
    module, x = make(), torch.randn(64, 16) * 3
    with torch.inference_mode():
        out = module(x)
    exact = dequantize(module.forward_codes(quantize(x, module.in_fmt)), module.out_fmt, x.dtype)
    assert torch.equal(out, exact)


def test_every_tensor_fixed_point_evaluates_the_same_in_float32_and_float64():
    """The end-to-end fixed-point BERT (lab variant "every tensor fixed point"): Linears s8.4 in,
    s16.8 out, matmuls, softmax, GELU, LayerNorm and the pooler's tanh integer. Every value is a
    code, so float32 and float64 give the same logits: the exact integer model, evaluated in float."""
    model = tiny_bert().eval()
    quantize_module(model, linear_config(8, outputs=True))
    use_integer_ops(model, END_TO_END)
    assert all(hasattr(m, "flow_scores") and hasattr(m, "flow_context")
               for m in model.modules() if type(m).__name__ == "BertSelfAttention")
    assert isinstance(model.bert.pooler.activation, QuantTanh)
    batch = padded_batch(batch=4, length=12)
    with torch.inference_mode():
        single = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        double = model.double()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.equal(single.double(), double)
    assert torch.equal(single * 256, (single * 256).round())  # the classifier's s16.8 output codes
