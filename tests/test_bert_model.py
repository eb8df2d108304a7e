"""BERT builder: the bert-tiny shape from config, the fallback reason, and config validation."""

import pytest

from flow.models.bert import build_bert, parameter_count


def test_bert_tiny_shape_from_config(monkeypatch):
    monkeypatch.setenv("FLOW_OFFLINE", "1")
    model, src = build_bert(pretrained=False)
    assert src.kind == "scratch"
    assert parameter_count(model) == 4_386_178  # 4.39 M
    assert parameter_count(model.bert.embeddings) == 3_972_864  # 3.97 M embeddings
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size,
            cfg.max_position_embeddings, cfg.vocab_size, cfg.num_labels) == (2, 128, 2, 512, 512, 30522, 2)


def test_auto_falls_back_with_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOW_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    _, src = build_bert("auto")
    assert src.kind == "scratch" and "FLOW_OFFLINE is set" in src.reason
    with pytest.raises(RuntimeError, match="cannot load prajjwal1/bert-tiny"):
        build_bert(True)


def test_bad_config():
    with pytest.raises(ValueError, match="not divisible"):
        build_bert(False, hidden_size=130, num_attention_heads=4)
    with pytest.raises(ValueError, match="unknown BertConfig field"):
        build_bert(False, num_layers=4)
