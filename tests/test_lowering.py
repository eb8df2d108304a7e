"""Lowering: BatchNorm folding, wiring ops, slopes, and graphs that are not chains."""
import pytest
import torch
from torch import nn

from flow.design.config import load_config
from flow.design.quantize import build_hardware_graph
from flow.formats.fixed import dequantize
from flow.graph import capture
from flow.hardware.lower import LoweringError, lower
from flow.hardware.stages import CastStage, LinearStage
from flow.models.mlp import build_mlp


def trained_like(model: nn.Module) -> nn.Module:
    """Give BatchNorm non-trivial running statistics, then switch to eval."""
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.rand(64, 8, 8) * 3)
    return model.eval()


def test_batchnorm_is_folded_into_the_linear_before_it():
    model = trained_like(build_mlp(64, [16, 8], 10, batchnorm=True))
    x = torch.rand(32, 8, 8)
    layers = lower(capture(model, {"input": x[:2]}, mode="eval"), model)
    assert [layer.kind for layer in layers] == ["linear", "relu", "linear", "relu", "linear"]
    h = x.flatten(1)
    for layer in layers:
        h = layer.linear(h) if layer.kind == "linear" else torch.relu(h)
    torch.testing.assert_close(h, model(x), rtol=1e-5, atol=1e-5)  # float re-association only


def test_batchnorm_design_reference_equals_fake_quant():
    model = trained_like(build_mlp(64, [16, 8], 10, batchnorm=True))
    x = torch.rand(50, 8, 8)
    config = load_config(None, {"quantization.default.data_in_frac_width": 3,
                                "quantization.default.data_out_frac_width": 3})
    hw = build_hardware_graph(lower(capture(model, {"input": x[:2]}, mode="eval"), model), config)
    exact = hw.forward_codes(hw.quantize_input(x))
    with torch.no_grad():
        assert torch.equal(hw.fake_quant_model()(x), dequantize(exact, hw.stages[-1].out_format))


def test_leaky_slope_must_be_a_power_of_two():
    model = nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU(0.1)).eval()
    with pytest.raises(LoweringError, match=r"slope 0\.1 is not 2\*\*-k"):
        lower(capture(model, {"input": torch.zeros(2, 4)}, mode="eval"), model)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return self.fc2(self.fc1(x) + x)


def test_a_graph_that_is_not_a_chain_is_refused():
    model = Residual().eval()
    with pytest.raises(LoweringError, match="aten.add"):
        lower(capture(model, {"x": torch.zeros(2, 4)}, mode="eval"), model)


def test_cast_inserted_only_where_formats_differ():
    model = build_mlp(64, [16, 8], 10).eval()
    config = load_config(None, {"quantization.fc2.data_in_width": 6, "quantization.fc2.data_in_frac_width": 2})
    hw = build_hardware_graph(lower(capture(model, {"input": torch.zeros(2, 8, 8)}, mode="eval"), model), config)
    casts = [s for s in hw.stages if isinstance(s, CastStage)]
    assert [(c.name, str(c.src), str(c.dst)) for c in casts] == [("fc2_cast_in", "fixed<s8.4>", "fixed<s6.2>")]
    assert [s.name for s in hw.stages if isinstance(s, LinearStage)] == ["fc1", "fc2", "fc3"]


def test_eval_mode_dropout_and_identity_are_wiring_and_train_mode_dropout_is_refused():
    import flow

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Dropout(0.5), nn.Identity(), nn.Linear(3, 2))
    x = torch.randn(8, 4)
    design = flow.compile(model, x[:2])
    assert [type(s).__name__ for s in design.graph.stages] == ["LinearStage", "ActivationStage", "LinearStage"]
    with torch.no_grad():
        assert torch.equal(design.fake_quant_model()(x), design.graph.stages[-1].out_format.dequantize(
            design.reference(design.quantize_inputs(x))))
    graph = capture(model, {"input": x[:2]}, mode="train")
    with pytest.raises(LoweringError, match="train-mode dropout .* at node .*module '2': Dropout"):
        lower(graph, model)
