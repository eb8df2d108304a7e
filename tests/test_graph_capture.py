"""Capture, module mapping, analysis metadata and reports of flow.graph on a small BERT."""

import pytest
import torch

from flow.graph import analyse, capture, format_report, report
from flow.graph.capture import accepted_inputs, owner
from flow.graph.ops import op_kind
from flow.models.bert import parameter_count
from flow.passes.dropout import set_dropout_mode
from tests.bert_helpers import padded_batch, tiny_bert


def test_unknown_input_is_one_line_error_naming_accepted_inputs():
    model = tiny_bert()
    with pytest.raises(ValueError) as exc:
        capture(model, padded_batch(), inputs=["input_ids", "pixel_values"])
    msg = str(exc.value)
    assert "\n" not in msg
    assert "'pixel_values'" in msg
    for name in ("input_ids", "attention_mask", "labels", "token_type_ids"):
        assert name in msg


def test_input_missing_from_batch_is_an_error():
    model = tiny_bert()
    batch = padded_batch()
    with pytest.raises(ValueError, match="token_type_ids.*not in the example batch"):
        capture(model, batch, inputs=["input_ids", "token_type_ids"])


def test_accepted_inputs_excludes_var_kwargs():
    names = accepted_inputs(tiny_bert())
    assert names[:2] == ["input_ids", "attention_mask"] and "labels" in names and "kwargs" not in names


def test_chosen_inputs_become_the_placeholders():
    model = tiny_bert()
    g = capture(model, padded_batch(), inputs=["input_ids", "labels"])
    assert g.input_names == ["input_ids", "labels"]
    out = g.run()
    assert out.loss is not None and out.logits.shape == (3, 2)


def test_nodes_map_back_to_their_modules():
    model = tiny_bert()
    g = capture(model, padded_batch(), inputs=["input_ids", "attention_mask"])
    modules = dict(model.named_modules())
    linears = [n for n in g.nodes if op_kind(n) == "linear"]
    assert len(linears) == 2 * 6 + 2  # q, k, v, attn-out, ffn-in, ffn-out per layer; pooler; classifier
    for n in linears:
        assert isinstance(modules[owner(n)], torch.nn.Linear), owner(n)
    assert {owner(n) for n in linears} == {k for k, m in modules.items() if isinstance(m, torch.nn.Linear)}


def test_analysis_metadata_shapes_dtypes_params():
    model = tiny_bert()
    batch = padded_batch(batch=3, length=12)
    g, info = analyse(capture(model, batch, inputs=["input_ids", "attention_mask"]))
    assert info["parameters"] == parameter_count(model)
    classifier = next(n for n in g.nodes if op_kind(n) == "linear" and owner(n) == "classifier")
    meta = classifier.meta["flow"]
    assert meta.kind == "linear" and meta.module == "classifier"
    assert meta.shapes == [(3, 2)] and meta.dtypes == ["float32"]
    assert meta.params == 32 * 2 + 2
    emb = next(n for n in g.nodes if owner(n) == "bert.embeddings.word_embeddings")
    assert emb.meta["flow"].shapes == [(3, 12, 32)]
    ids = g.node("input_ids").meta["flow"]
    assert ids.kind == "input" and ids.dtypes == ["int64"]


def test_report_counts_ops_and_parameters_once():
    model = tiny_bert()
    g = capture(model, padded_batch(), inputs=["input_ids", "attention_mask"])
    rep = report(g)
    assert rep["ops_by_kind"]["dropout"] == 6
    assert rep["ops_by_kind"]["linear"] == 14
    assert rep["parameters_total"] == parameter_count(model)
    assert sum(rep["parameters_by_module"].values()) == rep["parameters_total"]
    assert rep["parameters_by_module"]["classifier"] == 66
    text = format_report(rep)
    assert "dropout 6" in text and "classifier" in text


def test_dynamic_capture_runs_other_shapes_and_matches_eager():
    model = tiny_bert()
    g = capture(model, padded_batch(), inputs=["input_ids", "attention_mask"], mode="eval", dynamic=True)
    set_dropout_mode(g, {"train": False})
    other = padded_batch(batch=5, length=20, seed=3)
    inputs = {k: other[k] for k in ("input_ids", "attention_mask")}
    model.eval()
    with torch.no_grad():
        assert torch.allclose(g.run(inputs).logits, model(**inputs).logits, atol=1e-6)


def test_capture_restores_training_flag():
    model = tiny_bert()
    model.eval()
    capture(model, padded_batch(), mode="train")
    assert not model.training
