"""Single-head self-attention compiled end to end (flow/ops/matmul.py on a sequence design): an
example input of shape (batch, sequence, features) streams each sample's tokens one after another,
Q·Kᵀ/√d and A·V are matmul stages (B buffered, the 1/√d a shift), bit-exact in Verilator against
flow's reference and the RTL-derived model, the cycle model measured, and the one-line refusals."""
import json

import pytest
import torch
from torch import nn

import flow
from flow.compiler.lower import LoweringError
from flow.emit.vectors import read_vectors
from flow.errors import ConfigError
from flow.estimate.model import estimate
from flow.nn import QuantMatmul
from flow.ops import supported
from flow.simulation.rtl_model import RtlModel

SEQ, D = 8, 16
QUANT = {"default": {"data_in_width": 12, "data_in_frac_width": 6, "data_out_width": 12, "data_out_frac_width": 6,
                     "weight_width": 8, "weight_frac_width": 6},
         "softmax": {"data_out_frac_width": 8},
         "matmul": {"data_in_width": 12, "data_in_frac_width": 8},  # Q·Kᵀ
         "matmul_1": {"data_in_width": 12, "data_in_frac_width": 8}}  # A·V: A is softmax's u9.8
FOLDED = {"default": {"in_par": "auto", "out_par": 4}, "q": {"in_par": 4}}
PARALLEL = {"default": {"in_par": "auto", "out_par": "full"}, "q": {"in_par": "full"}}


class Attention(nn.Module):
    """x: (batch, seq, d) -> o(softmax(q kᵀ / √d) v), d = 16: 1/√d = 1/4, an exact shift."""

    def __init__(self, d: int = D, scale: float = 4.0, op: str = "div", form: str = "@") -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.scale, self.op, self.form = scale, op, form

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        if self.form == "bmm":
            product = torch.bmm(q, k.transpose(1, 2))
        else:
            product = torch.matmul(q, k.mT) if self.form == "mT" else q @ k.transpose(-2, -1)
        scores = product / self.scale if self.op == "div" else product * self.scale
        return self.o(torch.softmax(scores, dim=-1) @ v)


def _compile(parallelism=None, quant=None, model=None, name: str = "attention"):
    torch.manual_seed(0)
    model = Attention() if model is None else model
    return flow.compile(model, torch.randn(2, SEQ, D), quant=QUANT if quant is None else quant,
                        parallelism=FOLDED if parallelism is None else parallelism, name=name)


def _inputs(count: int) -> torch.Tensor:
    return torch.randn(count, SEQ, D, generator=torch.Generator().manual_seed(1))


def test_attention_lowers_to_two_matmuls_with_the_shift_and_an_exact_reference():
    design = _compile()
    stages = {stage.name: stage for stage in design.graph.stages}
    kinds = [(stage.name, stage.report_row()["kind"]) for stage in design.graph.stages]
    assert kinds == [("input_fork", "fork"), ("input_fork_1", "fork"), ("q", "linear"), ("k", "linear"),
                     ("v", "linear"), ("matmul_cast_a", "cast"), ("matmul_cast_b", "cast"), ("matmul_fifo_a", "fifo"),
                     ("matmul", "matmul"), ("matmul_out_fifo", "fifo"), ("softmax", "softmax"),
                     ("softmax_out_fifo", "fifo"), ("matmul_1_cast_a", "cast"), ("matmul_1_cast_b", "cast"),
                     ("matmul_1_fifo_a", "fifo"),
                     ("matmul_1_fifo_b", "fifo"), ("matmul_1", "matmul"), ("matmul_1_out_fifo", "fifo"),
                     ("o", "linear")]
    qk, av = stages["matmul"], stages["matmul_1"]
    p = qk.rtl_parameters("")
    assert (p["ROWS"], p["INNER"], p["COLS"], p["B_TRANSPOSED"], p["A_PAR"], p["B_PAR"], p["OUT_PAR"]) == (
        SEQ, D, SEQ, 1, 4, 4, 4)
    assert p["IN_FRAC"] == 8 + 8 + 2  # the products' frac plus 1/sqrt(16) = 2**-2
    p = av.rtl_parameters("")
    assert (p["ROWS"], p["INNER"], p["COLS"], p["B_TRANSPOSED"], p["IN_FRAC"]) == (SEQ, SEQ, D, 0, 16)
    # Q waits in a FIFO while K fills B (two sequences of Q's beats plus two), V's beats likewise
    assert stages["matmul_fifo_a"].depth == 2 * SEQ * D // 4 + 2 and stages["matmul_1_fifo_b"].depth == 34
    assert stages["matmul_out_fifo"].depth == SEQ * SEQ // 4 + 2  # one product of tokens, plus two
    # B_BEATS + ROWS (A_BEATS + GROUPS (STEPS + 1)), B_BEATS + A_BEATS + STEPS
    assert (qk.initiation_interval, qk.latency) == (32 + 8 * (4 + 2 * 5), 32 + 4 + 4)
    assert (design.initiation_interval, design.graph.initiation_interval_max, design.latency) == (248, 263, 203)
    x = _inputs(6)
    codes = design.quantize_inputs(x)
    assert codes.shape == (6, SEQ * D)  # a sample a row, its tokens one after another
    exact = design.reference(codes)
    assert exact.shape == (6, SEQ * D) and torch.equal(design.reference(codes.reshape(6, SEQ, D)), exact)
    with torch.no_grad():  # the fake-quant model computes the same numbers
        fake = design.fake_quant_model()(x)
    assert torch.equal(fake, design.graph.last.out_format.dequantize(exact))
    # the matmul stage is QuantMatmul on each sequence: Q·Kᵀ with K's tokens transposed
    q_codes = qk.module.matmul.a_fmt.quantize(torch.randn(3 * SEQ, D))
    k_codes = qk.module.matmul.b_fmt.quantize(torch.randn(3 * SEQ, D))
    expected = QuantMatmul.forward_codes(qk.module.matmul, q_codes.reshape(3, SEQ, D),
                                         k_codes.reshape(3, SEQ, D).transpose(-2, -1))
    assert torch.equal(qk.forward_codes(q_codes, k_codes), expected.reshape(3 * SEQ, SEQ))
    # per-token stages see one token a row
    assert torch.equal(stages["q"].forward_codes(codes.reshape(-1, D)), stages["q"].layer.forward_codes(
        codes.reshape(6, SEQ, D)).reshape(-1, D))


def test_a_matmul_table_by_type_sets_every_matmul():
    quant = {"by": "type", "default": QUANT["default"], "softmax": QUANT["softmax"], "matmul": QUANT["matmul"]}
    design = _compile(quant=quant)
    stages = [stage for stage in design.graph.stages if stage.report_row()["kind"] == "matmul"]
    assert [(stage.name, str(stage.in_format), stage.rtl_parameters("")["IN_FRAC"]) for stage in stages] == [
        ("matmul", "fixed<s12.8>", 8 + 8 + 2), ("matmul_1", "fixed<s12.8>", 8 + 8)]


@pytest.mark.parametrize("form,op,scale", [("mT", "mul", 0.25), ("bmm", "div", 4.0)])
def test_other_spellings_of_attention_lower_to_the_same_design(form, op, scale):
    """torch.matmul(q, k.mT) * 0.25 and torch.bmm(q, k.transpose(1, 2)) / 4 are the same two matmuls."""
    torch.manual_seed(0)
    plain, other = Attention(), Attention(scale=scale, op=op, form=form)
    other.load_state_dict(plain.state_dict())
    quant = QUANT  # torch.bmm's layer is "bmm", then A·V's "matmul"
    if form == "bmm":
        quant = {"default": QUANT["default"], "softmax": QUANT["softmax"], "bmm": QUANT["matmul"],
                 "matmul": QUANT["matmul_1"]}
    design = _compile(model=plain)
    spelled = _compile(FOLDED, quant, model=other)
    assert [stage.report_row()["kind"] for stage in spelled.graph.stages] == [
        stage.report_row()["kind"] for stage in design.graph.stages]
    codes = design.quantize_inputs(_inputs(4))
    assert torch.equal(spelled.reference(codes), design.reference(codes))


def test_attention_report_rows_estimator_and_rtl_model(tmp_path):
    design = _compile()
    folder = tmp_path / "attention"
    design.emit(folder, _inputs(4))
    report = json.loads((folder / "report.json").read_text())
    rows = {row["name"]: row for row in report["stages"]}
    assert rows["matmul"]["kind"] == "matmul" and rows["matmul"]["b_transposed"] and rows["matmul"]["scale_shift"] == 2
    assert rows["matmul_1"]["b_transposed"] is False and rows["matmul_1"]["sequence"] == SEQ
    assert report["cycles"] == {"initiation_interval": 248, "latency_estimate": 203, "initiation_interval_max": 263,
                                "sequence": SEQ}
    assert "| matmul | matmul |" in (folder / "report.md").read_text()
    assert "matmul.sv" in (folder / "rtl" / "filelist.f").read_text().split()
    top = (folder / "rtl" / "attention_top.sv").read_text()
    assert f"// Sequence: {SEQ} tokens a sample" in top
    vectors = read_vectors(folder / "vectors")
    assert (vectors.meta["in_features"], vectors.meta["out_features"]) == (SEQ * D, SEQ * D)
    model = RtlModel(folder / "rtl", vectors.meta["top"])
    assert model.sequence == SEQ
    assert [model(row) for row in vectors.inputs.tolist()] == vectors.expected.tolist()
    stages = {stage.name: stage for stage in design.graph.stages}
    assert stages["matmul"].estimate_features()["ram_bits"] == D * SEQ * 12
    assert stages["matmul"].dsp_count() == 4 * 4  # A_PAR x OUT_PAR 12 x 12 products, shift addresses
    estimated = estimate(design.graph)["stages"]
    assert estimated["u_s8_matmul"]["DSP48E1"] == 16 and estimated["u_s8_matmul"]["LUT"] > 100
    assert "matmul of two (batch, sequence, features) activations" in supported()


@pytest.mark.sim
@pytest.mark.parametrize("parallelism,cycles", [(FOLDED, (248, 263, 203)), (PARALLEL, (224, 224, 50))])
def test_attention_is_bit_exact_in_rtl_and_meets_the_cycle_model(parallelism, cycles, tmp_path):
    design = _compile(parallelism, name="attention_folded" if parallelism is FOLDED else "attention_parallel")
    modelled = (design.initiation_interval, design.initiation_interval_max, design.latency)
    assert modelled == cycles  # folded: softmax's 8 rows of 31 cycles; the first sample 15 later (A·V's B load)
    folder = tmp_path / "attention"
    design.emit(folder, _inputs(32))
    sim = design.simulate(folder)  # 30 % valid gaps and 30 % backpressure after a clean phase
    out_par = design.graph.last.out_par
    assert sim["mismatches"] == 0 and sim["out_beats"] == sim["expected_out_beats"] == 32 * SEQ * D // out_par
    assert sim["elements_compared"] >= 32 * SEQ * D  # every sample, plus the clean phase's again
    assert (sim["initiation_interval"], sim["initiation_interval_max"], sim["latency_cycles"]) == modelled
    vectors = read_vectors(folder / "vectors")
    model = RtlModel(folder / "rtl", vectors.meta["top"])
    assert [model(row) for row in vectors.inputs[:8].tolist()] == vectors.expected[:8].tolist()


def test_per_token_ops_of_a_sequence_design_act_on_each_token():
    """A sequence design without a matmul: Linear, LayerNorm and softmax act token by token."""

    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.ln = nn.Linear(16, 16), nn.LayerNorm(16)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.ln(self.fc(x)), dim=-1)

    torch.manual_seed(0)
    quant = {key: QUANT[key] for key in ("default", "softmax")}
    model, table = Tokens(), {"default": {"in_par": "auto"}}
    design = flow.compile(model, torch.randn(2, 4, 16), quant=quant, parallelism=table)
    vectors = flow.compile(model, torch.randn(2, 16), quant=quant, parallelism=table)  # one token a sample
    assert (design.graph.sequence, design.graph.input.features, vectors.graph.sequence) == (4, 16, 1)
    assert design.initiation_interval == 4 * vectors.initiation_interval
    assert design.latency == vectors.latency
    x = torch.randn(5, 4, 16)
    codes = design.quantize_inputs(x)
    assert torch.equal(design.reference(codes), vectors.reference(codes.reshape(20, 16)).reshape(5, 64))


class Flattened(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_a_model_that_flattens_its_3d_input_is_not_a_sequence_design():
    design = flow.compile(Flattened(), torch.randn(2, 4, 16), quant=QUANT["default"])
    assert design.graph.sequence == 1 and design.graph.input.features == 64


class Odd(nn.Module):
    """Attention-like models flow refuses (``case`` picks how)."""

    def __init__(self, case: str) -> None:
        super().__init__()
        self.case = case
        self.q, self.k = nn.Linear(D, D), nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k = self.q(x), self.k(x)
        if self.case == "scale_3":
            return (q @ k.transpose(-2, -1)) / 3
        if self.case == "scale_2":
            return (q @ k.transpose(-2, -1)) * 2
        if self.case == "transpose_elsewhere":
            return k.transpose(-2, -1)
        if self.case == "product_of_transposed_a":
            return q.transpose(-2, -1) @ k
        return self.q(q.flatten(1).reshape(-1, SEQ, D))


@pytest.mark.parametrize("case,message", [
    ("scale_3", "matmul 'matmul' is scaled by 0.333333 at node 'div', not a power of two: flow folds 2**-k into the "
                "accumulator; scale by a power of two (1/sqrt(d) with d a power of 4) or fold the scale into the "
                "Linear before it"),
    ("scale_2", "matmul 'matmul' is scaled by 2 at node 'mul', not a power of two"),
    ("transpose_elsewhere", "a transpose that is not the second operand of a matmul, k.transpose(-2, -1), "
                            "aten.transpose.int at node 'transpose'"),
    ("product_of_transposed_a", "a transpose that is not the second operand of a matmul"),
    ("flatten_sequence", "a reshape flattening the sequence of 8 tokens (flow streams a sequence token by token; "
                         "flatten the model's input instead)"),
])
def test_attention_forms_flow_cannot_stream_are_one_line_lowering_errors(case, message):
    with pytest.raises(LoweringError) as error:
        flow.compile(Odd(case), torch.randn(2, SEQ, D), quant=QUANT)
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1


@pytest.mark.parametrize("quant,parallelism,message", [
    (QUANT, {**FOLDED, "matmul": {"in_par": 4, "out_par": 3}},
     "parallelism.matmul.out_par=3 does not divide the layer's 8 features; choose one of 1, 2, 4, 8"),
    (QUANT, {**FOLDED, "matmul": {"in_par": 2}},
     "parallelism.matmul.in_par=2 but the stream into matmul 'matmul' carries 4 elements per beat"),
    (QUANT, {**FOLDED, "k": {"out_par": 8}},
     "matmul 'matmul': matmul: B parallelism 8 exceeds the A parallelism 4, so a beat of B would write one bank "
     "twice; use a B parallelism of at most 4 (B's beat width is the out_par of the layer feeding B; raise "
     "parallelism.matmul.in_par or lower that)"),
    ({**QUANT, "matmul": {"name": "ternary", "data_in_width": 2, "data_out_width": 2, "weight_width": 2,
                          "bias_width": 2}}, FOLDED,
     "matmul 'matmul' computes in fixed point, but its data_in is ternary<t=0.7,row-scaled>; set "
     "quantization.matmul.name = 'fixed'"),
])
def test_bad_matmul_configs_are_one_line_errors(quant, parallelism, message):
    with pytest.raises(ConfigError) as error:
        _compile(parallelism, quant)
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1
