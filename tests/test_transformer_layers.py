"""GELU, LayerNorm and softmax as layer kinds of the compiler (flow/ops/gelu.py, layer_norm.py,
softmax.py): user models compiled end to end, bit-exact in Verilator against flow's reference and
the RTL-derived model, the cycle model measured, and the one-line refusals."""
import json

import pytest
import torch
from torch import nn

import flow
from flow.compiler.lower import LoweringError
from flow.emit.vectors import read_vectors
from flow.errors import ConfigError
from flow.estimate.model import estimate
from flow.formats.fixed import FixedFormat
from flow.nn import QuantGELU, QuantLayerNorm, QuantSoftmax
from flow.ops import supported
from flow.simulation.rtl_model import RtlModel

QUANT = {"default": {"data_in_width": 12, "data_in_frac_width": 6, "data_out_width": 12, "data_out_frac_width": 6,
                     "weight_width": 8, "weight_frac_width": 6},
         "softmax": {"data_out_frac_width": 8}}
PARALLELISM = {"default": {"in_par": "auto", "out_par": 8}, "fc1": {"in_par": 8}}


class Block(nn.Module):
    """Linear(32, 64) -> LayerNorm(64) -> GELU [+ its input] -> Linear(64, 16) -> softmax(dim=-1)."""

    def __init__(self, residual: bool = False) -> None:
        super().__init__()
        self.fc1, self.ln, self.act, self.fc2 = nn.Linear(32, 64), nn.LayerNorm(64), nn.GELU(), nn.Linear(64, 16)
        self.residual = residual
        with torch.no_grad():  # an affine LayerNorm that is not the identity
            self.ln.weight.copy_(1 + 0.3 * torch.randn(64, generator=torch.Generator().manual_seed(5)))
            self.ln.bias.copy_(0.2 * torch.randn(64, generator=torch.Generator().manual_seed(6)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln(self.fc1(x))
        h = h + self.act(h) if self.residual else self.act(h)
        return torch.softmax(self.fc2(h), dim=-1)


def _compile(model: nn.Module, quant=None, parallelism=None, name: str = "block"):
    torch.manual_seed(0)
    return flow.compile(model, torch.randn(2, 32), quant=QUANT if quant is None else quant,
                        parallelism=PARALLELISM if parallelism is None else parallelism, name=name)


def _inputs(count: int = 48) -> torch.Tensor:
    return torch.randn(count, 32, generator=torch.Generator().manual_seed(1))


def _block(residual: bool = False):
    torch.manual_seed(0)
    return _compile(Block(residual), name=f"block{int(residual)}")


def test_block_lowers_to_its_stages_with_the_components_cycles_and_exact_reference():
    design = _block()
    stages = {stage.name: stage for stage in design.graph.stages}
    kinds = [(stage.name, stage.report_row()["kind"]) for stage in design.graph.stages]
    assert kinds == [("fc1", "linear"), ("ln", "layer_norm"), ("ln_out_fifo", "fifo"), ("act", "gelu"),
                     ("fc2", "linear"), ("softmax", "softmax")]
    assert stages["ln_out_fifo"].depth == 64 // 8 + 2  # one row of beats plus two
    # LayerNorm: 2 beats/row * 8 + 2 + ROOT_STEPS + NORM_FRAC + ROOT_FRAC + GUARD cycles a row
    assert (stages["ln"].initiation_interval, stages["ln"].latency) == (92, 84)
    assert (stages["softmax"].initiation_interval, stages["softmax"].latency) == (31, 29)  # 3 * 2 + 25, 2 * 2 + 25
    assert (stages["act"].in_par, stages["softmax"].in_par) == (8, 8)
    assert str(stages["softmax"].out_format) == "fixed<u9.8>"  # one integer bit: 1.0 is reachable
    assert (design.initiation_interval, design.latency) == (92, 167)
    x = _inputs()
    codes = design.quantize_inputs(x)
    exact = design.reference(codes)
    assert torch.all(exact.sum(dim=1) - 256 <= 8) and torch.all(exact.sum(dim=1) - 256 >= -8)  # rows sum to ~1.0
    with torch.no_grad():  # the fake-quant model computes the same numbers
        fake = design.fake_quant_model()(x)
    assert torch.equal(fake, design.graph.last.out_format.dequantize(exact))
    ln = stages["ln"]
    fc1_out = stages["fc1"].forward_codes(codes)
    assert torch.equal(ln.forward_codes(fc1_out), ln.module.forward_codes(fc1_out))


def test_block_report_rows_and_estimator_features(tmp_path):
    design = _block()
    folder = tmp_path / "block0"
    design.emit(folder, _inputs(8))
    report = json.loads((folder / "report.json").read_text())
    rows = {row["name"]: row for row in report["stages"]}
    assert rows["ln"]["kind"] == "layer_norm" and rows["ln"]["weight_format"] == "fixed<s8.6>"
    assert rows["softmax"]["exp_frac"] == 12 and rows["act"]["kind"] == "gelu"
    markdown = (folder / "report.md").read_text()
    assert "| ln | layer_norm |" in markdown and "| softmax | softmax |" in markdown and "| act | gelu |" in markdown
    files = (folder / "rtl" / "filelist.f").read_text().split()
    assert {"gelu.sv", "layer_norm.sv", "softmax.sv", "reciprocal.sv"} <= set(files)
    vectors = read_vectors(folder / "vectors")
    model = RtlModel(folder / "rtl", vectors.meta["top"])
    assert [model(row) for row in vectors.inputs.tolist()] == vectors.expected.tolist()
    features = {stage.name: stage.estimate_features() for stage in design.graph.stages}
    assert features["ln"]["register_row_bits"] == 64 * 12 and features["ln"]["ram_row_bits"] == 0  # 8 lanes write
    assert features["softmax"]["register_row_bits"] == 16 * (12 + 14)  # inputs, and exps at 8 + 4 guard + 2 bits
    assert features["act"]["product_bits"] > 0
    estimated = estimate(design.graph)["stages"]
    assert all(estimated[name]["LUT"] > 0 for name in ("u_s1_ln", "u_s3_act", "u_s5_softmax"))
    assert "GELU" in supported() and "LayerNorm over the last dimension" in supported()


@pytest.mark.sim
@pytest.mark.parametrize("residual,cycles", [(False, (92, 167)), (True, (92, 168))])
def test_block_is_bit_exact_in_rtl_and_meets_the_cycle_model(residual, cycles, tmp_path):
    design = _block(residual)
    if residual:
        assert [stage.name for stage in design.graph.stages][3:7] == ["ln_out_fifo_fork", "act", "add_fifo_a", "add"]
    folder = tmp_path / "block"
    design.emit(folder, _inputs(64))
    sim = design.simulate(folder)  # 30 % valid gaps and 30 % backpressure after a clean phase
    assert sim["mismatches"] == 0 and sim["out_beats"] == sim["expected_out_beats"] == 64 * 16 // 8
    assert sim["elements_compared"] >= 64 * 16  # every vector, plus the clean phase's again
    assert (sim["initiation_interval"], sim["initiation_interval_max"], sim["latency_cycles"]) == (*cycles[:1],
                                                                                                   *cycles)
    assert (design.initiation_interval, design.latency) == cycles


class QuantBlock(nn.Module):
    """flow.nn's modules in a model: each keeps its own formats through lowering."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(32, 16), nn.Linear(16, 8)
        self.norm = QuantLayerNorm(16, FixedFormat(10, 5), FixedFormat(10, 6), FixedFormat(8, 6), eps=1e-5)
        self.gelu = QuantGELU(FixedFormat(10, 6), FixedFormat(9, 5))
        self.softmax = QuantSoftmax(FixedFormat(12, 6), out_frac=7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.fc2(self.gelu(self.norm(self.fc1(x)))))


def test_quant_modules_lower_with_their_own_formats():
    torch.manual_seed(0)
    design = _compile(QuantBlock(), quant={}, parallelism={"default": {"in_par": "auto", "out_par": 4},
                                                            "fc1": {"in_par": 8}})
    stages = {stage.name: stage for stage in design.graph.stages}
    assert [stage.name for stage in design.graph.stages] == [
        "fc1", "norm_cast_in", "norm", "norm_out_fifo", "gelu", "fc2_cast_in", "fc2", "softmax_cast_in", "softmax"]
    assert (str(stages["norm"].in_format), str(stages["norm"].out_format)) == ("fixed<s10.5>", "fixed<s10.6>")
    assert str(stages["gelu"].out_format) == "fixed<s9.5>" and str(stages["softmax"].out_format) == "fixed<u8.7>"
    x = _inputs(16)
    with torch.no_grad():
        fake = design.fake_quant_model()(x)
    assert torch.equal(fake, design.graph.last.out_format.dequantize(design.reference(design.quantize_inputs(x))))


class Shaped(nn.Module):
    """A transformer op placed where flow cannot stream it (``case`` picks which); the 3-D cases
    read (batch, 4, 16) inputs."""

    def __init__(self, case: str) -> None:
        super().__init__()
        self.case = case
        self.fc = nn.Linear(16, 16) if case in THREE_D else nn.Linear(32, 64)
        self.ln = nn.LayerNorm((4, 16)) if case == "layer_norm_two_dims" else nn.LayerNorm(16)
        self.act = nn.GELU(approximate="tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if self.case == "softmax_dim0":
            return torch.softmax(h, dim=0)
        if self.case == "softmax_rows_in_vector":
            return torch.softmax(h, dim=-1)
        if self.case == "gelu_tanh":
            return self.act(h)
        return self.ln(h)


THREE_D = ("softmax_rows_in_vector", "layer_norm_two_dims", "layer_norm_inner_rows")


@pytest.mark.parametrize("case", ["softmax_rows_in_vector", "layer_norm_inner_rows"])
def test_a_row_op_over_the_tokens_of_a_3d_input_is_a_sequence_design(case):
    design = flow.compile(Shaped(case), torch.randn(2, 4, 16), quant=QUANT["default"],
                          parallelism={"default": {"in_par": "auto"}})
    assert design.graph.sequence == 4 and design.graph.input.features == 16


@pytest.mark.parametrize("case,message", [
    ("softmax_dim0", "softmax over dimension 0 of a (2, 64) tensor (flow streams one vector a sample: use the last "
                     "dimension, dim=-1)"),
    ("layer_norm_two_dims", "LayerNorm over dimension (-2, -1) of a (2, 4, 16) tensor (flow streams one vector a "
                            "sample: use the last dimension, dim=-1)"),
    ("gelu_tanh", "GELU approximate='tanh' (flow computes the erf form"),
])
def test_a_row_op_over_another_dimension_is_a_one_line_lowering_error(case, message):
    """(A row op over the last dimension of a (batch, 4, 16) input is a sequence design of 4 tokens:
    tests/test_attention.py.)"""
    example = torch.randn(2, 4, 16) if case in THREE_D else torch.randn(2, 32)
    with pytest.raises(LoweringError) as error:
        flow.compile(Shaped(case), example, quant=QUANT, parallelism={"default": {"in_par": "auto"}})
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1


@pytest.mark.parametrize("quant,parallelism,message", [
    (QUANT, {**PARALLELISM, "ln": {"in_par": 3}},
     "parallelism.ln.in_par=3 does not divide the layer's 64 features; choose one of 1, 2, 4, 8, 16, 32, 64"),
    (QUANT, {**PARALLELISM, "act": {"in_par": 4}},
     "parallelism.act.in_par=4 but the stream into gelu 'act' carries 8 elements per beat; set it to 8 or 'auto'"),
    ({**QUANT, "softmax": {"data_in_frac_width": 2, "data_out_frac_width": 8}}, PARALLELISM,
     "softmax 'softmax': exp input frac 2 is too narrow for the exp range: its step 0.25 is over a third of "
     "ln 2 = 0.693; use an input frac >= 3 (quantization.softmax.data_in_frac_width"),
    ({**QUANT, "softmax": {"data_in_width": 40, "data_in_frac_width": 20, "data_out_frac_width": 20}}, PARALLELISM,
     "needs a 83-bit product in softmax.sv, over 62 bits; narrow the input or lower the output frac"),
    ({**QUANT, "ln": {"weight_signed": False}}, PARALLELISM,
     "layer_norm 'ln' takes a signed weight, got fixed<u8.6>; set quantization.ln.weight_signed = true"),
    ({**QUANT, "act": {"data_out_frac_width": -1}}, PARALLELISM,
     "gelu 'act' takes a data_out frac >= 0"),
])
def test_bad_transformer_op_configs_are_one_line_errors(quant, parallelism, message):
    with pytest.raises(ConfigError) as error:
        _compile(Block(), quant, parallelism)
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1
