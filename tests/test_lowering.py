"""Lowering: BatchNorm folding, wiring ops, slopes, and graphs that are not chains."""
import pytest
import torch
from torch import nn

from flow.circuits.components import CONCAT_LOCKSTEP_CYCLES, concat_cycles
from flow.compiler.build_graph import build_hardware_graph
from flow.compiler.hardware_graph import CastStage, ConcatStage, LinearStage
from flow.compiler.lower import LoweringError, lower
from flow.config.load import ConfigError, load_config
from flow.formats.fixed import FixedFormat, dequantize
from flow.graph import capture
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
        h = layer.module(h) if layer.kind == "linear" else torch.relu(h)
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


def test_a_residual_lowers_to_a_dag_with_a_fork_and_a_balancing_fifo():
    model = Residual().eval()
    layers = lower(capture(model, {"x": torch.zeros(2, 4)}, mode="eval"), model)
    assert [(layer.kind, layer.name, layer.inputs) for layer in layers] == [
        ("linear", "fc1", ("input",)), ("add", "add", ("fc1", "input")), ("linear", "fc2", ("add",))]
    hw = build_hardware_graph(layers, load_config(None, {}))
    kinds = [(type(s).__name__, s.inputs) for s in hw.stages]
    assert kinds == [("BroadcastStage", ("input",)), ("LinearStage", ("input_fork.a",)),
                     ("FifoStage", ("input_fork.b",)), ("AddStage", ("fc1", "add_fifo_b")),
                     ("LinearStage", ("add",))]
    fifo = hw.stages[2]
    # fc1 is three cycles long, the shortcut none: three beats wait; the FIFO also holds one vector
    # per II of the wait plus one (4 at II 1), plus two
    assert fifo.depth == max(3, 1 * (3 + 1)) + 2


class _TwoWidths(nn.Module):
    """fc1(x) + fc2(x) where fc2 is one wide: torch broadcasts, hardware cannot."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 6), nn.Linear(4, 1)

    def forward(self, x):
        return self.fc1(x) + self.fc2(x)


def test_a_residual_whose_branches_differ_in_shape_is_one_line_naming_the_fix():
    model = _TwoWidths().eval()
    with pytest.raises(LoweringError) as error:
        lower(capture(model, {"x": torch.zeros(2, 4)}, mode="eval"), model)
    message = str(error.value)
    assert "\n" not in message
    assert "residual add at node 'add'" in message and "(2, 6) and (2, 1)" in message
    assert "same width" in message


def test_an_op_flow_cannot_lower_names_node_op_module_and_the_list():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc1(x) * x

    model = Gate().eval()
    with pytest.raises(LoweringError, match=r"unsupported op aten\.mul\.Tensor at node 'mul' .*flow lowers Linear"):
        lower(capture(model, {"x": torch.zeros(2, 4)}, mode="eval"), model)


def test_cat_along_the_batch_dimension_is_refused():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 4)

        def forward(self, x):
            return torch.cat([self.fc1(x), x], dim=0)

    model = Stack().eval()
    with pytest.raises(LoweringError, match="cat along dimension 0"):
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


class _ResidualConcat(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 6), nn.Linear(12, 3)

    def forward(self, x):
        h = x + torch.relu(self.fc1(x))
        return self.fc2(torch.cat([h, x], dim=-1))


def test_dag_reference_equals_fake_quant_and_join_formats_follow_their_tables():
    torch.manual_seed(0)
    model = _ResidualConcat().eval()
    x = torch.randn(200, 6) * 2
    config = load_config(None, {"quantization.add.data_out_width": 6, "quantization.add.data_out_frac_width": 2,
                                "quantization.add.rounding": "floor"})
    hw = build_hardware_graph(lower(capture(model, {"x": x[:2]}, mode="eval"), model), config)
    add = next(s for s in hw.stages if s.name == "add")
    assert (str(add.out_format), add.rounding.value) == ("fixed<s6.2>", "floor")
    cat = next(s for s in hw.stages if s.name == "cat")
    assert str(cat.out_format) == "fixed<s8.4>"  # the default table's data_out
    assert [s.name for s in hw.stages if isinstance(s, CastStage)] == ["cat_cast_a"]  # s6.2 -> s8.4
    exact = hw.forward_codes(hw.quantize_input(x))
    with torch.no_grad():
        assert torch.equal(hw.fake_quant_model()(x), dequantize(exact, hw.last.out_format))
    saturated = add.forward_codes(hw.quantize_input(x), hw.quantize_input(x))
    assert int((saturated == 31).sum()) > 0  # the s6.2 add does saturate on these inputs


def test_a_join_of_streams_with_different_beat_widths_names_the_parallelism_to_change():
    model = Residual().eval()
    config = load_config(None, {"parallelism.fc1.out_par": 2})
    with pytest.raises(ConfigError, match=r"add 'add' joins fc1 \(2 elements per beat\) and input \(4\); "
                                          r"give both the same parallelism"):
        build_hardware_graph(lower(capture(model, {"x": torch.zeros(2, 4)}, mode="eval"), model), config)


class _Concat(nn.Module):
    """fc2(cat([fc1(x), x])): a concat of 4 and 6 features."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 4), nn.Linear(10, 3)

    def forward(self, x):
        return self.fc2(torch.cat([self.fc1(x), x], dim=-1))


def _concat_graph(**overrides):
    model = _Concat().eval()
    layers = lower(capture(model, {"x": torch.zeros(2, 6)}, mode="eval"), model)
    return build_hardware_graph(layers, load_config(None, {"parallelism.default.multiplier": "auto", **overrides}))


def test_a_concat_of_two_fully_parallel_streams_is_one_lockstep_beat_and_its_reader_shift_add():
    hw = _concat_graph()
    (cat,) = [s for s in hw.stages if isinstance(s, ConcatStage)]
    assert cat.lockstep and (cat.a_par, cat.b_par, cat.in_par, cat.out_par) == (4, 6, 4, 10)
    assert (cat.initiation_interval, cat.latency) == CONCAT_LOCKSTEP_CYCLES == (1, 1)
    fc2 = hw.linear_stages[-1]
    assert fc2.in_par == 10 and fc2.constant is not None  # fully parallel, so shift-add
    assert hw.initiation_interval == 1
    codes = hw.quantize_input(torch.randn(20, 6) * 4)
    hidden = hw.linear_stages[0].forward_codes(codes)
    assert torch.equal(cat.forward_codes(hidden, codes), torch.cat([hidden, codes], dim=-1))
    assert _concat_graph(**{"parallelism.fc2.multiplier": "lut"}).linear_stages[-1].constant is not None


def test_a_concat_of_folded_streams_stays_beat_serial_and_its_reader_folded():
    hw = _concat_graph(**{"parallelism.fc1.in_par": 2, "parallelism.fc1.out_par": 2})
    (cat,) = [s for s in hw.stages if isinstance(s, ConcatStage)]
    assert not cat.lockstep and (cat.in_par, cat.out_par, cat.a_beats, cat.b_beats) == (2, 2, 2, 3)
    assert (cat.initiation_interval, cat.latency) == concat_cycles(2, 3) == (5, 1)
    assert hw.linear_stages[-1].in_par == 2 and hw.linear_stages[-1].constant is None


def test_a_concat_of_one_folded_and_one_other_stream_names_both_fixes():
    with pytest.raises(ConfigError, match=r"concat 'cat' joins fc1 \(2 elements per beat\) and input \(6\); give "
                                          r"both the same parallelism .*, or make both fully parallel$"):
        _concat_graph(**{"parallelism.fc1.out_par": 2})
    with pytest.raises(ValueError, match=r"concat 'c': a beat-serial concatenation needs one beat width on both "
                                         r"inputs \(a: 2, b: 3 elements per beat\)"):
        ConcatStage("c", FixedFormat(8, 4), 2, 3, 4, 6)
