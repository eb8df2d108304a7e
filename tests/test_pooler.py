"""BERT's pooler and classifier after a token-wise layer, compiled end to end: x (batch, seq, d) ->
Linear -> h[:, 0] (flow/ops/select_token.py: the stream after it carries one vector a sample) ->
Linear -> tanh (flow/ops/tanh.py, flow.nn.QuantTanh exactly) -> Linear(d, 2), bit-exact in
Verilator against flow's reference and the RTL-derived model, the cycle model measured, and the
one-line refusals."""
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
from flow.nn import QuantTanh
from flow.ops import supported
from flow.simulation.rtl_model import RtlModel

SEQ, D = 8, 16
QUANT = {"default": {"data_in_width": 12, "data_in_frac_width": 6, "data_out_width": 12, "data_out_frac_width": 6,
                     "weight_width": 8, "weight_frac_width": 6},
         "act": {"data_in_width": 12, "data_in_frac_width": 8, "data_out_frac_width": 8},
         "classifier": {"data_in_width": 10, "data_in_frac_width": 8}}  # reads tanh's s10.8 as it is
FOLDED = {"default": {"in_par": "auto", "out_par": 4}, "classifier": {"out_par": 2}}
PARALLEL = {"default": {"in_par": "auto", "out_par": "full"}}


class Pooler(nn.Module):
    """A token-wise Linear, then BERT's pooler tanh(dense(h[:, i])) and a two-class classifier."""

    def __init__(self, index: int = 0, spelling: str = "h[:, i]", act: nn.Module | None = None) -> None:
        super().__init__()
        self.token, self.dense, self.classifier = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, 2)
        self.act = nn.Tanh() if act is None else act
        self.index, self.spelling = index, spelling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.token(x)
        if self.spelling == "h[:, i, :]":
            first = h[:, self.index, :]
        elif self.spelling == "select":
            first = h.select(1, self.index)
        elif self.spelling == "torch.tanh":
            return self.classifier(torch.tanh(self.dense(h[:, self.index])))
        else:
            first = h[:, self.index]
        return self.classifier(self.act(self.dense(first)))


def _compile(parallelism=None, quant=None, model=None, name: str = "pooler"):
    torch.manual_seed(0)
    model = Pooler() if model is None else model
    return flow.compile(model, torch.randn(2, SEQ, D), quant=QUANT if quant is None else quant,
                        parallelism=FOLDED if parallelism is None else parallelism, name=name)


def _inputs(count: int) -> torch.Tensor:
    return torch.randn(count, SEQ, D, generator=torch.Generator().manual_seed(1)) * 2


def test_the_pooler_lowers_to_select_token_and_tanh_with_an_exact_reference():
    design = _compile()
    stages = {stage.name: stage for stage in design.graph.stages}
    assert [(stage.name, stage.report_row()["kind"]) for stage in design.graph.stages] == [
        ("token", "linear"), ("select", "select_token"), ("select_out_fifo", "fifo"), ("dense", "linear"),
        ("act_cast_in", "cast"), ("act", "tanh"), ("classifier", "linear")]
    select, act = stages["select"], stages["act"]
    assert select.rtl_parameters("") == {"WIDTH": 4 * 12, "BEATS": 4, "TOKENS": SEQ, "INDEX": 0}
    assert stages["select_out_fifo"].depth == 4 + 2  # one token, plus two
    assert (str(act.in_format), str(act.out_format), act.latency) == ("fixed<s12.8>", "fixed<s10.8>", 8 + 4 + 3)
    assert (design.graph.sequence, design.graph.out_sequence) == (SEQ, 1)
    # the token Linear's 4 cycles a token x 8 tokens pace it; the pooler's Linear takes 16 a sample
    assert (design.initiation_interval, design.graph.initiation_interval_max, design.latency) == (32, 32, 48)
    x = _inputs(6)
    codes = design.quantize_inputs(x)
    assert codes.shape == (6, SEQ * D)  # a sample a row, its tokens one after another
    exact = design.reference(codes)
    assert exact.shape == (6, 2)  # one vector a sample after h[:, 0]
    with torch.no_grad():  # the fake-quant model computes the same numbers
        fake = design.fake_quant_model()(x)
    assert torch.equal(fake, design.graph.last.out_format.dequantize(exact))
    # the stages: token 0 of each sample, tanh = QuantTanh
    tokens = codes.reshape(-1, D)
    assert torch.equal(select.forward_codes(tokens), codes.reshape(6, SEQ, D)[:, 0])
    t = act.in_format.quantize(torch.randn(50, D) * 4)
    assert torch.equal(act.forward_codes(t), QuantTanh(act.in_format, 8).forward_codes(t))


@pytest.mark.parametrize("spelling", ["h[:, i, :]", "select", "torch.tanh"])
def test_other_spellings_lower_to_the_same_design(spelling):
    torch.manual_seed(0)
    plain, other = Pooler(), Pooler(spelling=spelling)
    other.load_state_dict(plain.state_dict())
    quant = QUANT if spelling != "torch.tanh" else {**{k: v for k, v in QUANT.items() if k != "act"},
                                                      "tanh": QUANT["act"]}
    design, spelled = _compile(model=plain), _compile(quant=quant, model=other)
    assert [stage.report_row()["kind"] for stage in spelled.graph.stages] == [
        stage.report_row()["kind"] for stage in design.graph.stages]
    codes = design.quantize_inputs(_inputs(4))
    assert torch.equal(spelled.reference(codes), design.reference(codes))


def test_a_quant_tanh_module_brings_its_own_formats_and_any_token_can_be_chosen():
    act = QuantTanh(FixedFormat(10, 6), out_frac=6)
    design = _compile(model=Pooler(index=-1, act=act), quant={k: v for k, v in QUANT.items() if k != "act"})
    stages = {stage.name: stage for stage in design.graph.stages}
    assert (str(stages["act"].in_format), str(stages["act"].out_format)) == ("fixed<s10.6>", "fixed<s8.6>")
    assert stages["select"].index == SEQ - 1
    codes = design.quantize_inputs(_inputs(3))
    last = design.reference(codes)
    first = _compile(model=Pooler(index=0, act=act), quant={k: v for k, v in QUANT.items() if k != "act"})
    assert last.shape == (3, 2) and not torch.equal(last, first.reference(codes))
    # the last token is offered seven tokens (28 beats) later than the first
    assert design.latency == first.latency + (SEQ - 1) * 4


def test_pooler_report_rows_estimator_and_rtl_model(tmp_path):
    design = _compile()
    folder = tmp_path / "pooler"
    design.emit(folder, _inputs(4))
    report = json.loads((folder / "report.json").read_text())
    rows = {row["name"]: row for row in report["stages"]}
    assert rows["select"]["kind"] == "select_token" and rows["select"]["index"] == 0 and rows["select"]["tokens"] == SEQ
    assert rows["act"]["kind"] == "tanh"
    assert report["cycles"] == {"initiation_interval": 32, "latency_estimate": 48, "initiation_interval_max": 32,
                                "sequence": SEQ}
    files = (folder / "rtl" / "filelist.f").read_text().split()
    assert {"tanh.sv", "select_token.sv"} <= set(files)
    vectors = read_vectors(folder / "vectors")
    assert (vectors.meta["in_features"], vectors.meta["out_features"]) == (SEQ * D, 2)
    assert vectors.expected.shape == (4, 2)
    model = RtlModel(folder / "rtl", vectors.meta["top"])
    assert model.sequence == SEQ and model.output_params() == (12, True)
    assert [model(row) for row in vectors.inputs.tolist()] == vectors.expected.tolist()
    stages = {stage.name: stage for stage in design.graph.stages}
    assert stages["act"].dsp_count() > 0 and stages["select"].dsp_count() == 0
    estimated = estimate(design.graph)["stages"]
    assert estimated["u_s5_act"]["DSP48E1"] == stages["act"].dsp_count()
    assert "tanh (nn.Tanh, torch.tanh or flow.nn.QuantTanh)" in supported()
    assert "h[:, i] of a (batch, sequence, features) sequence design" in supported()


def test_the_rtl_model_of_a_tanh_output_reads_signed_codes(tmp_path):
    """A design ending in tanh: the output elements are tanh.sv's signed OUT_FRAC + 2 bits."""

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(D, D)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(self.fc(x[:, 0]))

    torch.manual_seed(0)
    quant = {"default": QUANT["default"], "tanh": QUANT["act"]}
    design = flow.compile(Head(), torch.randn(2, SEQ, D), quant=quant, parallelism=PARALLEL, name="head")
    design.emit(tmp_path / "head", _inputs(8))
    vectors = read_vectors(tmp_path / "head" / "vectors")
    model = RtlModel(tmp_path / "head" / "rtl", vectors.meta["top"])
    assert model.output_params() == (10, True)
    assert [model(row) for row in vectors.inputs.tolist()] == vectors.expected.tolist()
    assert vectors.expected.min() < 0 < vectors.expected.max()


@pytest.mark.sim
@pytest.mark.parametrize("parallelism,index,cycles,engine", [
    (FOLDED, 0, (32, 32, 48), "bulk"), (PARALLEL, 0, (8, 8, 27), "bulk"), (FOLDED, 5, (32, 32, 68), "bulk"),
    (FOLDED, 0, (32, 32, 48), "cocotb")])
def test_the_pooler_is_bit_exact_in_rtl_and_meets_the_cycle_model(parallelism, index, cycles, engine, tmp_path):
    """Both harnesses stream 8 tokens a sample in and take one vector a sample out."""
    name = f"pooler_{'folded' if parallelism is FOLDED else 'parallel'}_{index}"
    design = _compile(parallelism, model=Pooler(index=index), name=name)
    modelled = (design.initiation_interval, design.initiation_interval_max, design.latency)
    assert modelled == cycles
    folder = tmp_path / "pooler"
    design.emit(folder, _inputs(64))
    sim = design.simulate(folder, engine=engine)  # 30 % valid gaps and 30 % backpressure after a clean phase
    out_par = design.graph.last.out_par
    assert sim["mismatches"] == 0 and sim["out_beats"] == sim["expected_out_beats"] == 64 * 2 // out_par
    assert sim["elements_compared"] >= 64 * 2  # every sample, plus the clean phase's again
    assert (sim["initiation_interval"], sim["initiation_interval_max"], sim["latency_cycles"]) == modelled
    vectors = read_vectors(folder / "vectors")
    model = RtlModel(folder / "rtl", vectors.meta["top"])
    assert [model(row) for row in vectors.inputs.tolist()] == vectors.expected.tolist()


class Odd(nn.Module):
    """Token selections flow refuses (``case`` picks how)."""

    def __init__(self, case: str) -> None:
        super().__init__()
        self.case = case
        self.fc = nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if self.case == "feature":
            return self.fc(h[:, :, 0:D])[:, :, 3]
        if self.case == "twice":
            return self.fc(h[:, 0])[:, 0]
        return self.fc(h[:, 0:1].flatten(1))


@pytest.mark.parametrize("case,message", [
    ("feature", "a select along dimension 2 (flow selects a token along the sequence, dimension 1: h[:, i]) "
                "in aten.select.int at node 'select'"),
    ("twice", "a select of a (2, 16) tensor (flow selects a token, h[:, i], of a (batch, sequence, features) "
              "sequence design) in aten.select.int"),
    ("slice", "aten.slice.Tensor at node 'slice"),
])
def test_selections_flow_cannot_stream_are_one_line_lowering_errors(case, message):
    with pytest.raises(LoweringError) as error:
        flow.compile(Odd(case), torch.randn(2, SEQ, D), quant=QUANT["default"])
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1


def test_a_select_on_a_design_without_a_sequence_is_refused():
    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(D, D)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)[:, 0]

    with pytest.raises(LoweringError) as error:
        flow.compile(Flat(), torch.randn(2, D), quant=QUANT["default"])
    assert "a select of a (2, 16) tensor" in str(error.value) and len(str(error.value).splitlines()) == 1


@pytest.mark.parametrize("table,message", [
    ({"name": "ternary", "data_in_width": 2, "data_out_width": 2, "weight_width": 2, "bias_width": 2},
     "tanh 'act' computes in fixed point, but its data_in is"),
    ({"data_in_width": 8, "data_in_frac_width": 2, "data_out_frac_width": 8},
     "tanh 'act': exp input frac 2 is too narrow for the exp range"),
    ({"data_in_width": 12, "data_in_frac_width": -1, "data_out_frac_width": 8},
     "tanh 'act' takes a data_in frac >= 0"),
    ({"data_in_width": 12, "data_in_frac_width": 8, "data_out_frac_width": 30},
     "tanh 'act': tanh of fixed<s12.8> at output frac 30 needs a 105-bit product in tanh.sv, over 62 bits"),
])
def test_tanh_formats_it_cannot_compute_are_one_line_config_errors(table, message):
    with pytest.raises(ConfigError) as error:
        _compile(quant={**QUANT, "act": table})
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1


class TwoTokens(nn.Module):
    """Two tokens of one sequence joined: h[:, 0] + h[:, -1], or cat(h[:, 0], h[:, 2])."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op, self.fc = op, nn.Linear(D, D)
        self.out = nn.Linear(D if op == "add" else 2 * D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        joined = h[:, 0] + h[:, -1] if self.op == "add" else torch.cat([h[:, 0], h[:, 2]], dim=-1)
        return self.out(torch.relu(joined))


@pytest.mark.sim
@pytest.mark.parametrize("op,parallelism,cycles", [("add", FOLDED, (32, 32, 44)), ("cat", PARALLEL, (8, 8, 12))])
def test_two_selected_tokens_joined_are_bit_exact_and_meet_the_cycle_model(op, parallelism, cycles, tmp_path):
    """The fork feeds two selects; the join after them is per sample (the earlier token waits in a FIFO)."""
    torch.manual_seed(0)
    table = {key: value for key, value in parallelism.items() if key != "classifier"}
    design = flow.compile(TwoTokens(op), torch.randn(2, SEQ, D), quant=QUANT["default"],
                          parallelism={**table, "out": {"out_par": 2}}, name=f"two_tokens_{op}")
    kinds = [stage.report_row()["kind"] for stage in design.graph.stages]
    assert kinds.count("select_token") == 2 and ("add" if op == "add" else "concat") in kinds
    x = _inputs(48)
    codes = design.quantize_inputs(x)
    h = design.graph.stages[0].forward_codes(codes.reshape(-1, D)).reshape(48, SEQ, D)
    selects = [stage for stage in design.graph.stages if stage.report_row()["kind"] == "select_token"]
    assert [stage.index for stage in selects] == [0, SEQ - 1 if op == "add" else 2]
    assert torch.equal(selects[1].forward_codes(h.reshape(-1, D)), h[:, selects[1].index])
    modelled = (design.initiation_interval, design.initiation_interval_max, design.latency)
    assert modelled == cycles
    folder = tmp_path / "two"
    design.emit(folder, x)
    sim = design.simulate(folder)
    assert sim["mismatches"] == 0 and sim["out_beats"] == sim["expected_out_beats"] == 48
    assert (sim["initiation_interval"], sim["initiation_interval_max"], sim["latency_cycles"]) == modelled
    vectors = read_vectors(folder / "vectors")
    model = RtlModel(folder / "rtl", vectors.meta["top"])
    assert [model(row) for row in vectors.inputs.tolist()] == vectors.expected.tolist()
