"""flow.passes.quantize: swapping nn.Linear for FormatLinear on an MLP and on a bert-tiny-shaped BERT."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from flow.formats.fixed import FixedFormat
from flow.models.mlp import build_mlp
from flow.nn import LinearQuantConfig, QuantLinear
from flow.nn.format_linear import FormatLinear
from flow.passes import QuantizeConfigError, dequantize_module, prune_module, quantize_module
from tests.bert_helpers import padded_batch, tiny_bert

BERT_LINEARS = 2 * 6 + 2  # per encoder layer: query, key, value, attention output, intermediate, output; pooler, classifier


def fixed(width: int, frac: int, *operands: str) -> dict[str, int]:
    ops = operands or ("data_in", "weight", "bias")
    return {k: v for op in ops for k, v in ((f"{op}_width", width), (f"{op}_frac_width", frac))}


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return build_mlp(64, [16], 10)


def manual_fq(x: torch.Tensor, width: int, frac: int) -> torch.Tensor:
    """Signed fixed point, round half up, saturate: written out by hand."""
    codes = torch.floor(x.double() * 2**frac + 0.5).clamp(-(2 ** (width - 1)), 2 ** (width - 1) - 1)
    return (codes / 2**frac).to(x.dtype)


def linear_paths(model: nn.Module, kind: type = nn.Linear) -> list[str]:
    return [p for p, m in model.named_modules() if isinstance(m, kind)]


# ---- by type ----
def test_mlp_by_type_replaces_every_linear_and_keeps_state():
    model = mlp()
    model.fc2.weight.requires_grad_(False)
    model.eval()
    report = quantize_module(model, {"by": "type", "linear": fixed(8, 4)})
    assert [r.path for r in report.changed] == ["fc1", "fc2"]
    assert report.quantized == 2 and report.left_float == 0
    assert all(type(m) is FormatLinear for m in (model.fc1, model.fc2))
    assert {r.old_type for r in report.changed} == {"Linear"} and {r.new_type for r in report.changed} == {"FormatLinear"}
    assert report.changed[0].formats == {"data_in": "fixed<s8.4>", "weight": "fixed<s8.4>", "bias": "fixed<s8.4>",
                                         "data_out": "float"}
    assert not model.fc2.weight.requires_grad and model.fc1.weight.requires_grad and not model.fc1.training


def test_bert_tiny_by_type_replaces_all_fourteen_linears_and_trains():
    model = tiny_bert()
    before = linear_paths(model)
    assert len(before) == BERT_LINEARS == 14
    report = quantize_module(model, {"default": fixed(8, 4)})  # by defaults to "type"
    assert report.by == "type" and [r.path for r in report.changed] == before
    assert linear_paths(model, FormatLinear) == before
    assert sum(type(m) is nn.Linear for m in model.modules()) == 0
    assert "14 Linear layers quantized (by type), 0 left in float" in report.table()
    out = model(**padded_batch())
    assert torch.isfinite(out.loss)
    out.loss.backward()  # straight-through gradients reach every quantized weight
    assert all(m.weight.grad is not None and m.weight.grad.abs().sum() > 0
               for m in model.modules() if isinstance(m, FormatLinear))


def test_name_none_leaves_a_layer_float_and_is_counted():
    model = tiny_bert()
    report = quantize_module(model, {"by": "name", "default": fixed(8, 4), "classifier": {"name": None}})
    assert report.quantized == 13 and report.float_layers == ["classifier"] and report.left_float == 1
    assert type(model.classifier) is nn.Linear
    assert "13 Linear layers quantized (by name), 1 left in float" in report.table()


# ---- by name: exact paths, parent paths, fnmatch patterns ----
def test_by_name_replaces_only_the_named_layer():
    model = tiny_bert()
    query = "bert.encoder.layer.0.attention.self.query"
    report = quantize_module(model, {"by": "name", query: fixed(8, 4)})
    assert [r.path for r in report.changed] == [query]
    assert linear_paths(model, FormatLinear) == [query]
    assert report.left_float == BERT_LINEARS - 1


def test_by_name_parent_path_covers_the_linears_below_it():
    model = tiny_bert()
    report = quantize_module(model, {"bert.encoder.layer.1": fixed(8, 4)}, by="name")
    assert [r.path for r in report.changed] == [p for p in linear_paths(tiny_bert()) if p.startswith("bert.encoder.layer.1.")]
    assert report.quantized == 6


def test_by_name_pattern_and_precedence():
    model = tiny_bert()
    query0 = "bert.encoder.layer.0.attention.self.query"
    config = {"by": "name", "default": fixed(8, 4), "*.attention.self.*": {"weight_width": 4, "weight_frac_width": 2},
              "bert.encoder.layer.0": {"weight_width": 6}, query0: {"weight_frac_width": 5}}
    report = quantize_module(model, config)
    weights = {r.path: r.formats["weight"] for r in report.changed}
    assert weights[query0] == "fixed<s6.5>"  # default < pattern < parent path < own path
    assert weights["bert.encoder.layer.0.attention.self.key"] == "fixed<s6.2>"
    assert weights["bert.encoder.layer.1.attention.self.value"] == "fixed<s4.2>"
    assert weights["bert.encoder.layer.0.intermediate.dense"] == "fixed<s6.4>"
    assert weights["classifier"] == "fixed<s8.4>"
    assert sum(w == "fixed<s4.2>" for w in weights.values()) == 3  # the pattern hits q, k, v of both layers


# ---- values ----
def test_fixed_8_4_equals_manual_fake_quant_of_x_w_b_and_out():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(12, 5))
    float_layer = copy.deepcopy(model[0])
    quantize_module(model, {"default": fixed(8, 4, "data_in", "weight", "bias", "data_out")})
    x = torch.randn(7, 12) * 3
    x[0, :3] = torch.tensor([9.3, -12.0, 0.03125])  # saturates high, saturates low, a tie (rounds up)
    y = model(x)
    inner = nn.functional.linear(manual_fq(x, 8, 4), manual_fq(float_layer.weight, 8, 4), manual_fq(float_layer.bias, 8, 4))
    assert torch.equal(y, manual_fq(inner, 8, 4))
    assert torch.equal(model[0].weight, float_layer.weight) and torch.equal(model[0].bias, float_layer.bias)
    assert manual_fq(x[0, :3], 8, 4).tolist() == [7.9375, -8.0, 0.0625]
    reference = QuantLinear.from_float(float_layer, LinearQuantConfig(*(FixedFormat(8, 4),) * 4))
    assert torch.equal(y, reference(x))  # the hardware-exact layer agrees when bias frac <= acc frac


def test_output_quantization_is_optional():
    model = nn.Sequential(nn.Linear(6, 3))
    torch.manual_seed(2)
    x = torch.randn(4, 6)
    plain = copy.deepcopy(model)
    quantize_module(plain, {"default": fixed(8, 4)})
    flagged = copy.deepcopy(model)
    report = quantize_module(flagged, {"default": {**fixed(8, 4, "data_in", "weight", "bias", "data_out"), "data_out": False}})
    assert report.changed[0].formats["data_out"] == "float"
    assert torch.equal(plain(x), flagged(x))
    assert not torch.equal(manual_fq(plain(x), 8, 4), plain(x))


def test_infinite_precision_equals_the_float_layer_bias_included():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    reference = copy.deepcopy(model)
    quantize_module(model, {"default": fixed(62, 48, "data_in", "weight", "bias", "data_out")})
    x = torch.randn(5, 16)
    assert torch.equal(model(x), reference(x))
    no_bias = nn.functional.linear(reference[1](reference[0](x)), reference[2].weight)
    assert not torch.allclose(model(x), no_bias)  # dropping the bias (MASE's reference) would differ


def test_straight_through_gradient_of_the_weight():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(5, 3))
    quantize_module(model, {"default": fixed(8, 4)})
    x = torch.randn(6, 5)
    model(x).sum().backward()
    assert torch.equal(model[0].weight.grad, manual_fq(x, 8, 4).sum(0).expand(3, 5))
    assert torch.equal(model[0].bias.grad, torch.full((3,), 6.0))


def test_dequantize_restores_plain_linears_with_the_same_outputs():
    model = mlp()
    reference = copy.deepcopy(model)
    quantize_module(model, {"default": fixed(4, 2)})
    x = torch.randn(3, 64)
    assert not torch.equal(model(x), reference(x))
    assert dequantize_module(model) == 2
    assert type(model.fc1) is nn.Linear and torch.equal(model(x), reference(x))


def test_shared_module_is_swapped_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    report = quantize_module(model, {"default": fixed(8, 4)})
    assert report.quantized == 1 and report.changed[0].aliases == ("2",)
    assert model[0] is model[2] and isinstance(model[0], FormatLinear)


def test_quant_linear_is_left_alone_and_format_linear_is_requantized():
    model = nn.Sequential(QuantLinear(4, 4), nn.Linear(4, 2))
    quantize_module(model, {"default": fixed(8, 4)})
    assert type(model[0]) is QuantLinear and isinstance(model[1], FormatLinear)
    report = quantize_module(model, {"default": fixed(6, 3)})
    assert report.changed[0].old_type == "FormatLinear" and report.changed[0].formats["weight"] == "fixed<s6.3>"


def test_prune_masks_move_with_quantization():
    model = mlp()
    prune_module(model, 0.5, method="l1")
    zeros = model.fc1.weight == 0
    quantize_module(model, {"default": fixed(8, 4)})
    assert isinstance(model.fc1, FormatLinear) and torch.equal(model.fc1.weight == 0, zeros)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model(torch.randn(8, 64)).square().sum().backward()
    optimizer.step()
    assert (model.fc1.weight[zeros] == 0).all() and (model.fc1.quantized_weight()[zeros] == 0).all()
    assert int(zeros.sum()) == 512


# ---- errors: one line, naming the culprit and the fix ----
@pytest.mark.parametrize(("config", "by", "message"), [
    ({"default": {**fixed(8, 4), "name": "posit"}}, None, "format 'posit' is not known; use one of binary, block_fp"),
    ({"default": {**fixed(8, 4), "weight_widht": 8}}, None, "unknown key 'weight_widht'; did you mean 'weight_width'?"),
    ({"default": {**fixed(8, 4), "data_out": "yes"}}, None, "data_out must be true or false"),
    ({"default": {**fixed(8, 4), "rounding": "up"}}, None, "rounding='up' is not a rounding mode"),
    ({"default": {k: v for k, v in fixed(8, 4).items() if k != "weight_frac_width"}}, None,
     "needs 'weight_frac_width' for the weight operand"),
    ({"fc9": fixed(8, 4)}, "name", "key 'fc9' names no module of the model; did you mean 'fc"),
    ({"act1": fixed(8, 4)}, "name", "key 'act1' names a module that holds no nn.Linear"),
    ({"fc*.x": fixed(8, 4)}, "name", "pattern 'fc*.x' matches no nn.Linear (Linear layers: fc1, fc2)"),
    ({"linear": fixed(8, 4)}, "name", "key 'linear' is a type table; pass by='type'"),
    ({"conv2d": fixed(8, 4)}, "type", "by='type' tables are default, linear"),
    ({"fc1": fixed(8, 4)}, "type", "got 'fc1'; did you mean by='name'?"),
    ({"by": "name", "default": fixed(8, 4)}, "type", "by='type' contradicts the config's 'by': 'name'"),
    ({"default": fixed(8, 4)}, "shape", "by='shape' is not known"),
])
def test_bad_configs_raise_one_line_errors(config, by, message):
    model = mlp()
    with pytest.raises(QuantizeConfigError) as error:
        quantize_module(model, config, by=by)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert type(model.fc1) is nn.Linear  # nothing was swapped


def test_model_without_linear_is_refused():
    with pytest.raises(QuantizeConfigError, match="has no nn.Linear"):
        quantize_module(nn.Sequential(nn.ReLU()), {"default": fixed(8, 4)})


def test_a_block_size_that_does_not_divide_the_input_features_is_one_line():
    model = nn.Sequential(nn.Linear(24, 4))
    config = {"default": {"name": "block_fp", "data_in_width": 8, "data_in_block_size": 16,
                          "data_in_exponent_width": 8, "weight_width": 8, "weight_block_size": 16,
                          "weight_exponent_width": 8, "bias_width": 8, "bias_block_size": 16,
                          "bias_exponent_width": 8}}
    with pytest.raises(QuantizeConfigError) as error:
        quantize_module(model, config)
    message = str(error.value)
    assert "block size 16 does not divide the layer's 24 input features; use one of 1, 2, 3, 4, 6, 8, 12, 24" \
        in message and "\n" not in message
    assert type(model[0]) is nn.Linear


def test_a_missing_block_size_and_a_sparsity_outside_the_range_are_one_line():
    from flow.passes import prune_module

    model = nn.Sequential(nn.Linear(32, 4))
    config = {"default": {"name": "block_fp", "data_in_width": 8, "data_in_exponent_width": 8,
                          "weight_width": 8, "weight_block_size": 16, "weight_exponent_width": 8,
                          "bias_width": 8, "bias_block_size": 16, "bias_exponent_width": 8}}
    with pytest.raises(QuantizeConfigError, match="data_in_block_size") as error:
        quantize_module(model, config)
    assert "\n" not in str(error.value)
    for sparsity in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="sparsity") as error:
            prune_module(model, sparsity)
        assert "\n" not in str(error.value)
