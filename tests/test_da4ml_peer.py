"""flow's exact reference against an independent generator: da4ml builds the same fully parallel
MLP from flow's weight and bias codes, and its own interpreter must agree on every output."""
import torch
from torch import nn

import flow
from benches import da4ml_peer


def small_design():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4)).eval()
    quant = {"data_in_signed": False, "data_in_frac_width": 3, "data_out_signed": False, "data_out_frac_width": 3}
    return flow.compile(model, torch.zeros(2, 12), quant=quant, parallelism={"default": {"multiplier": "lut"}},
                        name="peer")


def test_da4ml_computes_what_flow_s_reference_computes():
    design = small_design()
    assert list(design.graph.elided) == ["1"]  # unsigned hidden codes: the ReLU is the identity
    codes = design.quantize_inputs(torch.rand(300, 12) * 8)
    _, _, comb = da4ml_peer.build_comb(design.graph)
    assert da4ml_peer.mismatches(comb, design.graph, codes) == 0
    assert da4ml_peer.cutoff_for(comb, 2) >= 1


def test_the_check_sees_a_wrong_bias(monkeypatch):
    design = small_design()
    codes = design.quantize_inputs(torch.rand(300, 12) * 8)
    layer = design.graph.linear_stages[0].layer
    real = layer.bias_codes()
    monkeypatch.setattr(layer, "bias_codes", lambda: real + (1 << (layer.acc_format.frac - 3)))  # one output LSB
    _, _, comb = da4ml_peer.build_comb(design.graph)
    monkeypatch.setattr(layer, "bias_codes", lambda: real)
    assert da4ml_peer.mismatches(comb, design.graph, codes) > 0
