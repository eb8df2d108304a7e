"""Hugging Face BertLayer and BertEncoder (no attention mask) compiled with flow.compile into one
sequence design (flow/ops/heads.py): each attention head is its own token stream (the Q, K, V
Linears split into one Linear a head, per-head matmuls and softmax, the heads concatenated back),
bit-exact in Verilator against flow's reference and the RTL-derived model, the cycle model
measured, the quantization tables a head inherits, and the one-line refusals.

bert-tiny's layer (hidden 128, 2 heads of 64, intermediate 512) takes minutes to build in
Verilator; the tests use its structure at hidden 32, 2 heads of 16, intermediate 64 (1/sqrt(16) =
2**-2 is a shift), 8 tokens a sample."""
import json

import pytest
import torch
from torch import nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertEncoder, BertLayer

import flow
from flow.compiler.lower import LoweringError
from flow.emit.vectors import read_vectors
from flow.errors import ConfigError
from flow.ops import supported
from flow.simulation.rtl_model import RtlModel

torch.set_num_threads(1)

SEQ, HIDDEN, HEADS, INTERMEDIATE = 8, 32, 2, 64
D = HIDDEN // HEADS
DEFAULT = {"data_in_width": 12, "data_in_frac_width": 6, "data_out_width": 12, "data_out_frac_width": 6,
           "weight_width": 8, "weight_frac_width": 6}
QUANT = {"by": "type", "default": DEFAULT, "softmax": {"data_out_frac_width": 8},
         "matmul": {"data_in_width": 12, "data_in_frac_width": 8}}
FOLDED = {"default": {"in_par": "auto", "out_par": 4}, "attention.self.query": {"in_par": 4}}


def bert_config(layers: int = 1, attention: str = "eager", hidden: int = HIDDEN, heads: int = HEADS,
                intermediate: int = INTERMEDIATE) -> BertConfig:
    return BertConfig(hidden_size=hidden, num_attention_heads=heads, intermediate_size=intermediate,
                      num_hidden_layers=layers, attn_implementation=attention)


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """Weights a fixed-point design resolves: nn.Linear's own uniform init (BERT's std 0.02 rounds
    to zero at 6 fraction bits), LayerNorm's affine away from the identity."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.reset_parameters()
        elif isinstance(module, nn.LayerNorm):
            with torch.no_grad():
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model.eval()


def bert_layer(attention: str = "eager", seed: int = 0, **dims) -> BertLayer:
    return randomized(BertLayer(bert_config(attention=attention, **dims)), seed)


def _compile(model: nn.Module | None = None, quant=None, parallelism=None, name: str = "bert_layer",
             hidden: int = HIDDEN):
    model = bert_layer() if model is None else model
    return flow.compile(model, torch.randn(2, SEQ, hidden), quant=QUANT if quant is None else quant,
                        parallelism=FOLDED if parallelism is None else parallelism, name=name)


def _inputs(count: int, hidden: int = HIDDEN) -> torch.Tensor:
    return torch.randn(count, SEQ, hidden, generator=torch.Generator().manual_seed(1))


def test_a_bert_layer_lowers_to_per_head_streams_with_an_exact_reference():
    model = bert_layer()
    design = _compile(model)
    kinds = {stage.name: stage.report_row()["kind"] for stage in design.graph.stages}
    heads = [f"attention.self.{part}.head{h}" for part in ("query", "key", "value", "matmul", "softmax", "matmul_1")
             for h in range(HEADS)]
    assert [kinds[name] for name in heads] == ["linear"] * 6 + ["matmul"] * 2 + ["softmax"] * 2 + ["matmul"] * 2
    assert kinds["attention.self.reshape"] == "concat"  # transpose(1, 2) + reshape: the heads concatenated
    assert [kinds[name] for name in ("attention.output.dense", "attention.output.add", "attention.output.LayerNorm",
                                     "intermediate.dense", "intermediate.intermediate_act_fn", "output.dense",
                                     "output.add_1", "output.LayerNorm")] == [
        "linear", "add", "layer_norm", "linear", "gelu", "linear", "add", "layer_norm"]
    assert "attention.self.query" not in kinds  # no whole Q Linear, no slicing: its rows split into heads
    stages = {stage.name: stage for stage in design.graph.stages}
    query = model.attention.self.query
    for h in range(HEADS):
        head = stages[f"attention.self.query.head{h}"]
        assert (head.in_features, head.out_features) == (HIDDEN, D)
        assert torch.equal(head.layer.weight_codes(), head.layer.config.weight.quantize(query.weight[h * D:(h + 1) * D]))
        qk, av = stages[f"attention.self.matmul.head{h}"], stages[f"attention.self.matmul_1.head{h}"]
        p = qk.rtl_parameters("")
        assert (p["ROWS"], p["INNER"], p["COLS"], p["B_TRANSPOSED"], qk.module.matmul.scale_shift) == (SEQ, D, SEQ, 1, 2)
        p = av.rtl_parameters("")
        assert (p["ROWS"], p["INNER"], p["COLS"], p["B_TRANSPOSED"]) == (SEQ, SEQ, D, 0)
        assert stages[qk.inputs[1]].inputs == (f"attention.self.key.head{h}",)  # its cast to s12.8
        assert stages[av.inputs[1]].inputs == (f"attention.self.value.head{h}",)
    x = _inputs(6)
    codes = design.quantize_inputs(x)
    exact = design.reference(codes)
    assert exact.shape == (6, SEQ * HIDDEN)
    with torch.no_grad():
        fake = design.fake_quant_model()(x)
        floating = model(x)
    floating = floating[0] if isinstance(floating, tuple) else floating
    assert torch.equal(fake, design.graph.last.out_format.dequantize(exact))
    assert (fake.reshape(6, SEQ, HIDDEN) - floating).abs().max() < 0.5  # LayerNorm outputs of about +-3


def test_sdpa_attention_lowers_to_the_same_design_as_eager():
    """BERT's default attention exports as one scaled_dot_product_attention node (its scale 1/sqrt(d)
    as a keyword): the same per-head matmul, softmax and matmul, named <module>.sdpa.*."""
    eager, sdpa = bert_layer("eager"), bert_layer("sdpa")
    design, spelled = _compile(eager), _compile(sdpa)
    kinds = [stage.report_row()["kind"] for stage in design.graph.stages]
    assert [stage.report_row()["kind"] for stage in spelled.graph.stages] == kinds
    names = {stage.name for stage in spelled.graph.stages}
    assert {"attention.self.sdpa.scores.head0", "attention.self.sdpa.softmax.head1",
            "attention.self.sdpa.context.head1"} <= names
    codes = design.quantize_inputs(_inputs(4))
    assert torch.equal(spelled.reference(codes), design.reference(codes))


@pytest.mark.parametrize("heads", [1, 4])
def test_one_head_keeps_its_linear_and_four_heads_concatenate_in_a_left_fold(heads):
    """hidden 64: 4 heads of 16 (three concats: 32, 48, 64 features), or 1 head of 64 (1/sqrt(64) = 2**-3)."""
    model = bert_layer(hidden=64, heads=heads)
    design = _compile(model, hidden=64)
    stages = {stage.name: stage for stage in design.graph.stages}
    concats = [(stage.name, stage.out_features) for stage in design.graph.stages
               if stage.report_row()["kind"] == "concat"]
    if heads == 1:
        assert concats == [] and stages["attention.self.query"].out_features == 64
        assert stages["attention.self.matmul"].module.matmul.scale_shift == 3
    else:
        assert concats == [("attention.self.reshape", 32), ("attention.self.reshape_1", 48),
                           ("attention.self.reshape_2", 64)]
        assert [stages[f"attention.self.softmax.head{h}"].features for h in range(heads)] == [SEQ] * heads
    x = _inputs(3, 64)
    with torch.no_grad():
        fake = design.fake_quant_model()(x)
        floating = model(x)
    assert torch.equal(fake, design.graph.last.out_format.dequantize(design.reference(design.quantize_inputs(x))))
    assert (fake.reshape(3, SEQ, 64) - floating).abs().max() < 0.5


def test_sdpa_of_token_streams_is_single_head_attention():
    """F.scaled_dot_product_attention on (batch, sequence, d) tensors: the single-head attention of
    tests/test_attention.py (its 1/sqrt(16) the default scale), the same reference."""
    from tests.test_attention import QUANT as ATTENTION_QUANT
    from tests.test_attention import Attention
    from tests.test_attention import _compile as attention_compile
    from tests.test_attention import _inputs as attention_inputs

    class Sdpa(Attention):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.o(nn.functional.scaled_dot_product_attention(self.q(x), self.k(x), self.v(x)))

    torch.manual_seed(0)
    plain = Attention()
    sdpa = Sdpa()
    sdpa.load_state_dict(plain.state_dict())
    quant = {"default": ATTENTION_QUANT["default"], "sdpa.scores": ATTENTION_QUANT["matmul"],
             "sdpa.softmax": ATTENTION_QUANT["softmax"], "sdpa.context": ATTENTION_QUANT["matmul_1"]}
    design, spelled = attention_compile(model=plain), attention_compile(model=sdpa, quant=quant)
    assert [stage.name for stage in spelled.graph.stages if stage.report_row()["kind"] in ("matmul", "softmax")] == [
        "sdpa.scores", "sdpa.softmax", "sdpa.context"]
    codes = design.quantize_inputs(attention_inputs(4))
    assert torch.equal(spelled.reference(codes), design.reference(codes))


def test_per_head_layers_inherit_their_parent_table_unless_named():
    quant = {"default": DEFAULT, "attention.self.query": {"weight_width": 6, "weight_frac_width": 4},
             "attention.self.query.head1": {"weight_width": 10, "weight_frac_width": 8},
             "attention.self.matmul": {"data_in_width": 12, "data_in_frac_width": 8},
             "attention.self.softmax": {"data_out_frac_width": 8}}
    parallelism = {**FOLDED, "attention.self.matmul": {"out_par": 2}, "attention.self.reshape": {}}
    stages = {stage.name: stage for stage in _compile(quant=quant, parallelism=parallelism).graph.stages}
    weights = [str(stages[f"attention.self.{name}"].layer.config.weight)
               for name in ("query.head0", "query.head1", "key.head0")]
    assert weights == ["fixed<s6.4>", "fixed<s10.8>", "fixed<s8.6>"]
    assert [str(stages[f"attention.self.matmul.head{h}"].in_format) for h in range(HEADS)] == ["fixed<s12.8>"] * 2
    assert [stages[f"attention.self.softmax.head{h}"].module.out_frac for h in range(HEADS)] == [8, 8]
    assert [stages[f"attention.self.matmul.head{h}"].out_par for h in range(HEADS)] == [2, 2]
    assert stages["attention.self.query.head1"].in_par == 4  # FOLDED's in_par of the parent reaches both heads
    with pytest.raises(ConfigError, match="quantization.attention.self.quer names no layer"):
        _compile(quant={"default": DEFAULT, "attention.self.quer": {}})


def test_bert_layer_report_and_rtl_model(tmp_path):
    design = _compile()
    folder = tmp_path / "bert_layer"
    design.emit(folder, _inputs(3))
    report = json.loads((folder / "report.json").read_text())
    rows = {row["name"]: row for row in report["stages"]}
    assert rows["attention.self.matmul.head1"]["b_transposed"] and rows["attention.self.matmul.head1"]["scale_shift"] == 2
    assert rows["attention.self.reshape"]["kind"] == "concat"
    vectors = read_vectors(folder / "vectors")
    model = RtlModel(folder / "rtl", vectors.meta["top"])
    assert model.sequence == SEQ
    assert [model(row) for row in vectors.inputs.tolist()] == vectors.expected.tolist()
    assert "multi-head attention" in supported()


@pytest.mark.sim
def test_bert_layer_is_bit_exact_in_rtl_and_meets_the_cycle_model(tmp_path):
    design = _compile()
    modelled = (design.initiation_interval, design.graph.initiation_interval_max, design.latency)
    assert modelled == (1024, 1024, 811)  # intermediate.dense: 8 tokens of 8 beats x 16 groups
    folder = tmp_path / "bert_layer"
    design.emit(folder, _inputs(16))
    sim = design.simulate(folder)  # 30 % valid gaps and 30 % backpressure after a clean phase
    assert sim["mismatches"] == 0 and sim["out_beats"] == sim["expected_out_beats"] == 16 * SEQ * HIDDEN // 4
    assert sim["elements_compared"] >= 16 * SEQ * HIDDEN
    assert (sim["initiation_interval"], sim["initiation_interval_max"], sim["latency_cycles"]) == modelled
    vectors = read_vectors(folder / "vectors")
    model = RtlModel(folder / "rtl", vectors.meta["top"])
    assert [model(row) for row in vectors.inputs[:4].tolist()] == vectors.expected[:4].tolist()


@pytest.mark.sim
def test_a_two_layer_bert_encoder_is_bit_exact_in_rtl(tmp_path):
    encoder = randomized(BertEncoder(bert_config(layers=2)))
    parallelism = {"default": {"in_par": "auto", "out_par": 4}, "layer.0.attention.self.query": {"in_par": 4}}
    design = _compile(encoder, parallelism=parallelism, name="bert_encoder")
    names = [stage.name for stage in design.graph.stages if stage.report_row()["kind"] == "matmul"]
    assert names == [f"layer.{i}.attention.self.matmul_{n}.head{h}".replace("matmul_0", "matmul")
                     for i, pair in enumerate(((0, 1), (2, 3))) for n in pair for h in range(HEADS)]
    codes = design.quantize_inputs(_inputs(4))
    with torch.no_grad():
        fake = design.fake_quant_model()(_inputs(4))
    assert torch.equal(fake, design.graph.last.out_format.dequantize(design.reference(codes)))
    modelled = (design.initiation_interval, design.graph.initiation_interval_max, design.latency)
    folder = tmp_path / "bert_encoder"
    design.emit(folder, _inputs(8))
    sim = design.simulate(folder)
    assert sim["mismatches"] == 0 and sim["out_beats"] == sim["expected_out_beats"] == 8 * SEQ * HIDDEN // 4
    assert (sim["initiation_interval"], sim["initiation_interval_max"], sim["latency_cycles"]) == modelled


class Heads(nn.Module):
    """Multi-head forms flow refuses (``case`` picks how); 2 heads of 8 (``d8``: 1/sqrt(8))."""

    def __init__(self, case: str) -> None:
        super().__init__()
        self.case = case
        self.q, self.k, self.v = (nn.Linear(HIDDEN, HIDDEN) for _ in range(3))

    def split(self, x: torch.Tensor, d: int = D) -> torch.Tensor:
        return x.view(x.shape[0], SEQ, -1, d).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        case = self.case
        if case == "view_of_relu":
            return self.split(torch.relu(q))
        if case == "view_without_transpose":
            return q.view(x.shape[0], SEQ, HEADS, D) + 0
        if case == "linear_read_twice":
            return self.split(q).transpose(1, 2).reshape(x.shape[0], SEQ, HIDDEN) + q
        if case == "sdpa_d8":
            q8, k8, v8 = self.split(q, 8), self.split(k, 8), self.split(v, 8)
            return nn.functional.scaled_dot_product_attention(q8, k8, v8).transpose(1, 2).reshape(-1, SEQ, HIDDEN)
        qh, kh, vh = self.split(q), self.split(k), self.split(v)
        if case == "heads_out":
            return qh
        if case == "transpose_1_3":
            return qh.transpose(1, 3)
        if case == "softmax_dim_2":
            return torch.softmax(qh @ kh.transpose(-1, -2), dim=2)
        if case == "scale_3":
            return (qh @ kh.transpose(-1, -2)) / 3
        if case == "add_heads":
            return qh + kh
        if case == "cat_heads":
            return torch.cat([qh, kh], dim=-1)
        if case == "merge_without_transpose":
            return (torch.softmax(qh @ kh.transpose(-1, -2), dim=-1) @ vh).reshape(x.shape[0], SEQ, HIDDEN)
        if case == "sdpa_causal":
            return nn.functional.scaled_dot_product_attention(qh, kh, vh, is_causal=True)
        raise ValueError(case)


@pytest.mark.parametrize("case,message", [
    ("view_of_relu", "a view into heads of relu 'relu' (flow splits the weights of a Linear read by nothing else "
                     "into one Linear a head), at aten.view.default at node 'view'"),
    ("view_without_transpose", "a view into heads not followed by transpose(1, 2)"),
    ("linear_read_twice", "a view into heads of linear 'q'"),
    ("heads_out", "a read of per-head tensor 'transpose' (merge the heads first: transpose(1, 2) then "
                  "reshape(b, s, heads * d)) by output"),
    ("transpose_1_3", "transpose(1, 3) of a per-head tensor laid out (b, h, s, d)"),
    ("softmax_dim_2", "softmax over dimension 2 of per-head tensor (2, 2, 8, 8) (flow takes softmax(-1) of each "
                      "head's token stream)"),
    ("scale_3", "the per-head matmuls 'matmul.head0'... are scaled by 0.333333 at node 'div', not a power of two"),
    ("add_heads", "add of a per-head (batch, heads, sequence, d) tensor (flow lowers per-head tensors inside "
                  "attention only: view(b, s, heads, d) + transpose(1, 2) of a Linear, per-head matmul, scale by "
                  "2**-k and softmax(-1), then transpose(1, 2) + reshape(b, s, heads * d)): aten.add.Tensor at node "
                  "'add'"),
    ("cat_heads", "cat of a per-head (batch, heads, sequence, d) tensor"),
    ("merge_without_transpose", "a reshape of per-head tensor (2, 2, 8, 16) to (2, 8, 32) (flow merges heads with "
                                "transpose(1, 2) then reshape(b, s, heads * d))"),
    ("sdpa_causal", "scaled_dot_product_attention with a mask, a causal mask or dropout (flow lowers it unmasked, in "
                    "eval mode; or build a Hugging Face model with attn_implementation=\"eager\")"),
    ("sdpa_d8", "scaled_dot_product_attention at node 'scaled_dot_product_attention' scales by 0.353553, not a "
                "power of two"),
])
def test_multi_head_forms_flow_cannot_stream_are_one_line_lowering_errors(case, message):
    torch.manual_seed(0)
    with pytest.raises(LoweringError) as error:
        flow.compile(Heads(case), torch.randn(2, SEQ, HIDDEN), quant=DEFAULT)
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1, str(error.value)
