"""The key_mask op: its reference against what Hugging Face BERT's additive mask does in flow's
integer reference (flow/passes/integer_ops.py: scores + mask, then QuantSoftmax's input
quantization: masked keys saturate to the softmax input format's lowest code); a model's second
input (batch, sequence) lowered from every form a mask is written in, the one-line refusals, the
emitted mask port, vectors and RTL model, and single-head masked attention bit-exact in Verilator
(both engines, random mask lengths) with the cycle model measured."""
import random

import pytest
import torch
from torch import nn

import flow
from flow.compiler.lower import LoweringError
from flow.emit.vectors import read_vectors
from flow.errors import ConfigError
from flow.estimate.model import estimate
from flow.formats.fixed import FixedFormat
from flow.formats.fixed import dequantize as fixed_dequantize
from flow.nn import QuantSoftmax
from flow.ops import MASK
from flow.ops.key_mask import key_mask_codes
from flow.simulation.rtl_model import RtlModel
from tests.test_attention import FOLDED, PARALLEL, QUANT, SEQ, Attention, D, _compile, _inputs


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


class MaskedAttention(Attention):
    """Single-head attention (tests/test_attention.py) with a key mask in one of the forms a model
    writes it (``form``); ``case`` picks a form flow refuses."""

    def __init__(self, form: str = "additive") -> None:
        super().__init__()
        self.form = form

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        form, keep = self.form, mask[:, None, :]
        if form == "sdpa":  # a bool attn_mask, True = attend
            context = nn.functional.scaled_dot_product_attention(self.q(x), self.k(x), self.v(x),
                                                                 attn_mask=keep.bool().expand(-1, SEQ, -1))
            return self.o(context)
        scores = self.q(x) @ self.k(x).transpose(-2, -1) / 4
        if form == "additive":  # HF's extended mask, on a (batch, sequence) int mask
            scores = scores + (1 - keep) * torch.finfo(scores.dtype).min
        elif form == "additive_float":  # the same after a cast, bias first
            scores = (1.0 - keep.to(scores.dtype)) * torch.finfo(scores.dtype).min + scores
        elif form == "masked_fill":
            scores = scores.masked_fill(keep == 0, float("-inf"))
        elif form == "where":
            scores = torch.where(keep.bool(), scores, torch.finfo(scores.dtype).min)
        elif form == "where_bias":  # create_bidirectional_mask's where(mask, 0, min), added
            scores = scores + torch.where(keep.bool(), 0.0, torch.finfo(scores.dtype).min)
        elif form == "query_mask":  # masks rows (queries), not keys
            scores = scores + (1 - mask[:, :, None]) * torch.finfo(scores.dtype).min
        elif form == "small_fill":
            scores = scores.masked_fill(keep == 0, -1.0)
        elif form == "cumsum":
            scores = scores + (1 - keep.cumsum(-1).clamp(max=1)) * torch.finfo(scores.dtype).min
        elif form == "read_by_matmul":
            return self.o((scores + (1 - keep) * -1e9) @ self.v(x))
        elif form != "unused":
            raise ValueError(form)
        return self.o(torch.softmax(scores, dim=-1) @ self.v(x))


def _masks(count: int, seed: int = 2) -> torch.Tensor:
    """Masks of random real lengths (padding at the end), the first all real, the second one real token,
    the third with a hole in the middle (the component takes any mask)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, SEQ + 1, (count,), generator=generator)
    lengths[0], lengths[1] = SEQ, 1
    masks = (torch.arange(SEQ)[None, :] < lengths[:, None]).long()
    masks[2] = torch.tensor([1, 0, 1, 1, 0, 1, 1, 0])
    return masks


def _masked(form: str = "additive", mask_dtype: torch.dtype = torch.long, quant=None, parallelism=None,
            name: str = "masked_attention"):
    torch.manual_seed(0)
    model = MaskedAttention(form)
    return flow.compile(model, (torch.randn(2, SEQ, D), torch.ones(2, SEQ, dtype=mask_dtype)),
                        quant=QUANT if quant is None else quant, parallelism=parallelism, name=name), model


@pytest.mark.parametrize("form,mask_dtype", [("additive", torch.long), ("additive_float", torch.float32),
                                             ("masked_fill", torch.bool), ("where", torch.long),
                                             ("where_bias", torch.long), ("sdpa", torch.long)])
def test_every_mask_form_lowers_to_one_key_mask_before_the_softmax(form, mask_dtype):
    quant = {**QUANT, "softmax": {"data_in_width": 16, "data_in_frac_width": 8, "data_out_frac_width": 8}}
    spelled = quant if form != "sdpa" else {"default": quant["default"], "sdpa.scores": quant["matmul"],
                                            "sdpa.softmax": quant["softmax"], "sdpa.context": quant["matmul_1"]}
    design, model = _masked(form, mask_dtype, quant=spelled)
    stages = {stage.name: stage for stage in design.graph.stages}
    masks = [stage for stage in design.graph.stages if stage.report_row()["kind"] == "key_mask"]
    assert design.has_mask and len(masks) == 1 and masks[0].inputs[1] == MASK
    key_mask = masks[0]
    softmax = next(stage for stage in design.graph.stages if stage.inputs == (key_mask.name,))
    assert softmax.report_row()["kind"] == "softmax" and key_mask.out_format == softmax.in_format
    assert key_mask.rtl_parameters("") == {"PAR": 8, "WIDTH": 16, "SIGNED": 1, "SEQ": SEQ, "ROWS": SEQ}
    assert stages[key_mask.inputs[0]].report_row()["kind"] == "cast"  # the scores cast to softmax's s16.8 first
    x, masks = _inputs(6), _masks(6)
    codes = design.quantize_inputs(x)
    exact = design.reference(codes, masks.to(mask_dtype))
    reference, _ = _masked("additive", quant=quant)
    assert torch.equal(exact, reference.reference(codes, masks))  # every form: the same design
    assert torch.equal(design.reference(codes), design.reference(codes, torch.ones(6, SEQ)))  # None: all real
    changed = (exact != design.reference(codes)).any(dim=1).tolist()
    assert changed == [False] + [bool(m.min() == 0) for m in masks[1:]]
    with torch.no_grad():
        fake = design.fake_quant_model()(x, masks.to(mask_dtype))
        floating = model(x, masks.to(mask_dtype))
    assert torch.equal(fake, design.graph.last.out_format.dequantize(exact))
    assert (fake.reshape(6, SEQ, D) - floating).abs().max() < 0.25


@pytest.mark.parametrize("case,message", [
    ("query_mask", "a mask that is not a key mask (it must change exactly the scores of the keys whose mask is 0"),
    ("small_fill", "a mask filling [-1.0] (one value <= -10000"),
    ("cumsum", "cumsum on the attention mask's path"),
    ("read_by_matmul", "a masked score read by matmul"),
    ("unused", "input 'mask' (an attention key mask) reaches no attention scores"),
])
def test_masks_flow_cannot_lower_are_one_line_errors(case, message):
    with pytest.raises(LoweringError) as error:
        _masked(case)
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1, str(error.value)


def test_a_third_input_and_a_mask_of_another_shape_are_one_line_errors():
    class Three(MaskedAttention):
        def forward(self, x, mask, other):
            return super().forward(x, mask) + other

    with pytest.raises(LoweringError, match="input 'other' is a third model input of shape") as error:
        flow.compile(Three(), (torch.randn(2, SEQ, D), torch.ones(2, SEQ), torch.randn(2, SEQ, D)), quant=QUANT)
    assert len(str(error.value).splitlines()) == 1
    with pytest.raises(LoweringError, match=r"input 'mask' is a second model input of shape \(2, 1, 8\); flow"):
        flow.compile(MaskedAttention(), (torch.randn(2, SEQ, D), torch.ones(2, 1, SEQ)), quant=QUANT)


def test_a_fill_the_softmax_format_does_not_saturate_is_a_config_error():
    quant = {**QUANT, "softmax": {"data_in_width": 16, "data_in_frac_width": 0, "data_out_frac_width": 8}}

    class Fill(MaskedAttention):
        def forward(self, x, mask):
            scores = (self.q(x) @ self.k(x).transpose(-2, -1) / 4).masked_fill(mask[:, None, :] == 0, -2e4)
            return self.o(torch.softmax(scores, dim=-1) @ self.v(x))

    with pytest.raises(ConfigError, match="the mask adds -20000 to masked keys, which does not saturate softmax "
                                          "'softmax''s input format fixed<s16.0>"):
        flow.compile(Fill(), (torch.randn(2, SEQ, D), torch.ones(2, SEQ)), quant=quant)


def test_the_mask_at_the_designs_edge_is_checked():
    design, _ = _masked()
    codes = design.quantize_inputs(_inputs(2))
    with pytest.raises(ValueError, match=r"the attention mask has shape \(2, 7\); this design takes"):
        design.reference(codes, torch.ones(2, SEQ - 1))
    with pytest.raises(ValueError, match="values other than 0 and 1"):
        design.reference(codes, torch.full((2, SEQ), 2))
    plain = _compile()
    with pytest.raises(ValueError, match="this design has no attention mask input"):
        plain.reference(codes, torch.ones(2, SEQ))


def test_a_masked_design_emits_the_mask_port_and_vectors_and_the_rtl_model_agrees(tmp_path):
    design, _ = _masked(parallelism=FOLDED)
    folder = tmp_path / "masked_attention"
    report = design.emit(folder, (_inputs(6), _masks(6)))
    top = (folder / "rtl" / "masked_attention_top.sv").read_text()
    assert "input  wire logic [0:0] s_axis_mask_tdata," in top and "output logic s_axis_mask_tready," in top
    assert ".s_axis_mask_tdata(s_axis_mask_tdata)" in top
    vectors = read_vectors(folder / "vectors")
    assert torch.equal(vectors.masks, _masks(6)) and vectors.meta["mask_bits"] == SEQ
    assert report["cycles"]["mask_bits"] == SEQ
    assert any(row["kind"] == "key_mask" for row in report["stages"])
    model = RtlModel(folder / "rtl", vectors.meta["top"])
    assert [model(row, mask) for row, mask in zip(vectors.inputs.tolist(), vectors.masks.tolist())] == (
        vectors.expected.tolist())
    assert model(vectors.inputs[1].tolist(), [1] * SEQ) != vectors.expected[1].tolist()  # the mask is read
    assert estimate(design.graph)["total"]["LUT"] > 0


@pytest.mark.sim
@pytest.mark.parametrize("engine,parallelism", [("bulk", FOLDED), ("cocotb", FOLDED), ("bulk", PARALLEL)])
def test_masked_attention_is_bit_exact_in_rtl_and_meets_the_cycle_model(engine, parallelism, tmp_path):
    """Random real lengths a sample (all real, one real token, a hole) on s_axis_mask with its own
    random gaps, 30 % gaps and backpressure on the data streams."""
    design, _ = _masked(parallelism=parallelism)
    folder = tmp_path / "masked_attention"
    count = 24
    design.emit(folder, _inputs(count), masks=_masks(count))
    vectors = read_vectors(folder / "vectors")  # the masks change the outputs of every padded sample
    padded = (vectors.masks.min(dim=1).values == 0).tolist()
    assert (vectors.expected != design.reference(vectors.inputs)).any(dim=1).tolist() == padded and any(padded)
    sim = design.simulate(folder, engine=engine)
    assert sim["mismatches"] == 0 and sim["out_beats"] == sim["expected_out_beats"]
    assert sim["elements_compared"] >= count * SEQ * D
    modelled = (design.initiation_interval, design.graph.initiation_interval_max, design.latency)
    assert (sim["initiation_interval"], sim["initiation_interval_max"], sim["latency_cycles"]) == modelled
    plain = _compile(parallelism=parallelism)  # the same attention without a mask: one cycle less, the same II
    assert modelled == (plain.initiation_interval, plain.graph.initiation_interval_max, plain.latency + 1)
    assert modelled == ((248, 263, 204) if parallelism is FOLDED else (224, 224, 51))
