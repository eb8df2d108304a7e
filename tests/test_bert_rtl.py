"""configs/bert_tiny.toml (flow.labs.bert_rtl): its quantization tables are the integer_ops lab's
END_TO_END setting and name every Linear and op of the design; the bert_tiny config path emits a design
whose vectors are tokenized reviews, and it simulates bit-exactly with the cycle model measured (a smoke
size: hidden 32, 2 heads of 16, intermediate 64, 8 tokens, seeded random weights, a small local IMDb);
the attention-mask switch is a one-line error while the mask is not lowered."""
import gzip
import json
from pathlib import Path

import pytest
import torch

from flow.config.load import load_config
from flow.emit.vectors import read_vectors
from flow.errors import ConfigError
from flow.labs import bert_rtl
from flow.simulation.rtl_model import RtlModel

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "bert_tiny.toml"
SMOKE = {"bert.weights": "random", "bert.seq": 8, "bert.reviews": 6, "bert.hidden_size": 32,
         "bert.intermediate_size": 64}
WORDS = "the film was good bad great awful plot acting story ending boring fun".split()


def _imdb(folder: Path, n: int = 24) -> Path:
    """A local IMDb of ``n`` reviews a split, half of them shorter than 8 tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train.jsonl.gz", "test.jsonl.gz"):
        with gzip.open(folder / name, "wt", encoding="utf-8") as fh:
            for i in range(n):
                words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(3 if i % 2 else 12 + i % 5)]
                fh.write(json.dumps({"text": " ".join(words), "label": int(i >= n // 2)}) + "\n")
    return folder


def _role(name: str, kind: str) -> str:
    if kind == "matmul":
        return "scores" if int(name.rsplit("matmul", 1)[1].lstrip("_") or 0) % 2 == 0 else "context"
    return kind


def test_the_tables_are_the_integer_ops_labs_end_to_end_setting_and_name_every_layer():
    config = load_config(CONFIG)
    assert (config.model.kind, config.dataset.name, config.bert.seq, config.bert.weights) == ("bert_tiny", "imdb", 128,
                                                                                               "lab1")
    model = bert_rtl.base_model(load_config(CONFIG, {k: v for k, v in SMOKE.items() if k.startswith("bert.")}))
    design = bert_rtl.compile_bert(bert_rtl.BertBody(model.model), config, 8)
    expected = bert_rtl.expected_tables()
    checked, parents = set(), set()
    for stage in design.graph.stages:
        kind = stage.report_row()["kind"]
        parent = stage.name.rsplit(".head", 1)[0]
        if kind in ("fork", "fifo", "cast", "select_token"):
            continue
        assert parent in config.quantization.layers, f"{parent} ({kind}) has no table of its own"
        table = config.quantization.layers[parent]
        for key, (width, frac) in expected[_role(parent, kind)].items():
            if key == "data_out_frac":
                assert table.data_out_frac_width == frac, parent
            else:
                assert (getattr(table, f"{key}_width"), getattr(table, f"{key}_frac_width")) == (width, frac), (parent, key)
        checked.add(_role(parent, kind))
        parents.add(parent)
    assert checked == set(expected)  # every role, with its formats
    assert parents == set(config.quantization.layers) and len(parents) == 33  # 14 Linears, 19 other layers
    linear = expected["linear"]
    assert linear == {"data_in": (8, 4), "weight": (8, 4), "bias": (8, 4), "data_out": (16, 8)}
    assert (expected["scores"]["data_in"], expected["tanh"]["data_in"]) == ((8, 4), (16, 8))
    assert str(design.graph.input.fmt) == "fixed<s8.4>"  # the host's embedding LayerNorm output, as s8.4


def test_the_attention_mask_switch_is_a_one_line_error(tmp_path):
    config = load_config(CONFIG, {**SMOKE, "bert.attention_mask": "true", "design.output_dir": str(tmp_path)})
    with pytest.raises(ConfigError) as error:
        bert_rtl.emit_bert(config, imdb_dir=str(tmp_path), log=lambda _: None)
    assert "bert.attention_mask = false" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="bert.weights must be 'lab1'"):
        load_config(CONFIG, {"bert.weights": "pretrained"})


@pytest.mark.sim
def test_the_bert_tiny_config_path_emits_reviews_and_simulates_bit_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOW_OFFLINE", "1")
    monkeypatch.setenv("FLOW_CACHE_DIR", str(tmp_path / "cache"))
    config = load_config(CONFIG, {**SMOKE, "design.output_dir": str(tmp_path)})
    emitted = bert_rtl.emit_bert(config, "configs/bert_tiny.toml", imdb_dir=str(_imdb(tmp_path / "imdb")),
                                 log=lambda _: None, progress=False)
    report, design = emitted.report, emitted.design
    assert report["vectors"] == 6 and report["reference_matches_fake_quant"] is True
    assert report["reviews"]["count"] == 6 and report["reviews"]["input_format"] == "fixed<s8.4>"
    assert len(set(report["reviews"]["test_index"])) == 6 and all(i % 2 == 0 for i in report["reviews"]["test_index"])
    vectors = read_vectors(emitted.folder / "vectors")
    assert (vectors.meta["in_features"], vectors.meta["out_features"]) == (8 * 32, 2)
    # the vectors are the host's embedding LayerNorm output of the reviews, quantized
    reviews = bert_rtl.test_reviews(8, str(tmp_path / "imdb")).full().first(6)
    model = bert_rtl.base_model(config).model
    assert torch.equal(vectors.inputs, design.quantize_inputs(bert_rtl.host_embeddings(model, reviews.ids)))
    assert torch.equal(vectors.labels, reviews.labels)
    modelled = (design.initiation_interval, design.initiation_interval_max, design.latency)
    sim = design.simulate(emitted.folder)  # 30 % valid gaps and 30 % backpressure after a clean phase
    assert sim["mismatches"] == 0 and sim["out_beats"] == sim["expected_out_beats"] == 6
    assert (sim["initiation_interval"], sim["initiation_interval_max"], sim["latency_cycles"]) == modelled
    rtl = RtlModel(emitted.folder / "rtl", vectors.meta["top"])
    assert [rtl(row) for row in vectors.inputs[:2].tolist()] == vectors.expected[:2].tolist()


def test_the_accuracy_task_checks_the_reference_against_the_fake_quant_model(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOW_OFFLINE", "1")
    monkeypatch.setenv("FLOW_CACHE_DIR", str(tmp_path / "cache"))
    config = load_config(CONFIG, SMOKE)
    record = bert_rtl.accuracy_task(config, tmp_path / "out", str(_imdb(tmp_path / "imdb")), progress=False, batch=5,
                                    check=10, log=lambda _: None)
    assert (record["reviews"], record["reviews_full_length"]) == (24, 12)  # every other review has 3 words
    assert record["reference_check"]["reviews"] == 10 == record["reference_check"]["equal_code_for_code"]
    assert record["hardware_accuracy"] == record["accuracy"]["fake_quant"]
    assert record["reference_check"]["exact_accuracy"] == record["reference_check"]["fake_quant_accuracy"]
    assert json.loads((tmp_path / "out" / "accuracy.json").read_text())["accuracy"] == record["accuracy"]
    for name in ("float_masked", "float", "fake_quant"):
        assert record["accuracy"][name] in {k / 24 for k in range(25)}
