"""configs/bert_tiny.toml (flow.labs.bert_rtl): its quantization tables are the integer_ops lab's
END_TO_END setting and name every Linear and op of the design; the bert_tiny config path emits a design
whose vectors are tokenized reviews, short ones padded, with their attention masks as the design's second
input stream, and it simulates bit-exactly with the cycle model measured (a smoke size: hidden 32, 2 heads
of 16, intermediate 64, 8 tokens, seeded random weights, a small local IMDb)."""
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
        if kind in ("fork", "fifo", "cast", "select_token", "key_mask"):  # key_mask: its softmax's input format
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


def _emit_smoke(tmp_path: Path, monkeypatch) -> bert_rtl.BertEmit:
    monkeypatch.setenv("FLOW_OFFLINE", "1")
    monkeypatch.setenv("FLOW_CACHE_DIR", str(tmp_path / "cache"))
    config = load_config(CONFIG, {**SMOKE, "design.output_dir": str(tmp_path)})
    return bert_rtl.emit_bert(config, "configs/bert_tiny.toml", imdb_dir=str(_imdb(tmp_path / "imdb")),
                              log=lambda _: None, progress=False)


def test_a_short_review_is_masked_and_the_rtl_model_matches_the_reference_bit_for_bit(tmp_path, monkeypatch):
    """The first reviews whatever their length: a 3-word review ([CLS] 3 words [SEP]) pads to 8 tokens
    with 3 masked; its vector's mask is on s_axis_mask, the reference's outputs change with it, and
    the RTL's own integer model (read from the SystemVerilog alone) computes the reference's codes."""
    emitted = _emit_smoke(tmp_path, monkeypatch)
    design, report = emitted.design, emitted.report
    assert design.has_mask and report["reference_matches_fake_quant"] is True
    assert report["reviews"]["lengths"] == [8, 8, 5, 5, 8, 5] and report["reviews"]["shorter_than_seq"] == 3
    assert [s.name for s in design.graph.stages if s.report_row()["kind"] == "key_mask"] == [
        f"encoder.layer.{i}.attention.self.key_mask.head{h}" for i in (0, 1) for h in (0, 1)]
    vectors = read_vectors(emitted.folder / "vectors")
    assert vectors.masks.tolist()[2] == [1, 1, 1, 1, 1, 0, 0, 0] and vectors.masks[0].min() == 1
    assert torch.equal(vectors.expected, design.reference(vectors.inputs, vectors.masks))
    unmasked = design.reference(vectors.inputs)  # the padding attended to: other codes on the short reviews
    assert (vectors.expected != unmasked).any(dim=1).tolist() == [length < 8 for length in report["reviews"]["lengths"]]
    rtl = RtlModel(emitted.folder / "rtl", vectors.meta["top"])
    for row in (2, 0):
        assert rtl(vectors.inputs[row].tolist(), vectors.masks[row].tolist()) == vectors.expected[row].tolist()


def test_the_attention_mask_is_no_config_key_any_more_and_bad_weights_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown config key 'bert.attention_mask'"):
        load_config(CONFIG, {"bert.attention_mask": "true"})
    with pytest.raises(ConfigError, match="bert.weights must be 'lab1'"):
        load_config(CONFIG, {"bert.weights": "pretrained"})


@pytest.mark.sim
def test_the_bert_tiny_config_path_emits_reviews_and_simulates_bit_exactly(tmp_path, monkeypatch):
    emitted = _emit_smoke(tmp_path, monkeypatch)
    config = load_config(CONFIG, {**SMOKE, "design.output_dir": str(tmp_path)})
    report, design = emitted.report, emitted.design
    assert report["vectors"] == 6 and report["reference_matches_fake_quant"] is True
    assert report["reviews"]["count"] == 6 and report["reviews"]["input_format"] == "fixed<s8.4>"
    assert len(set(report["reviews"]["test_index"])) == 6  # short (odd) and long (even) reviews alike
    assert {i % 2 for i in report["reviews"]["test_index"]} == {0, 1}
    vectors = read_vectors(emitted.folder / "vectors")
    assert (vectors.meta["in_features"], vectors.meta["out_features"]) == (8 * 32, 2)
    # the vectors are the host's embedding LayerNorm output of the reviews, quantized
    reviews = bert_rtl.test_reviews(8, str(tmp_path / "imdb")).first(6)
    model = bert_rtl.base_model(config).model
    assert torch.equal(vectors.inputs, design.quantize_inputs(bert_rtl.host_embeddings(model, reviews.ids)))
    assert torch.equal(vectors.labels, reviews.labels) and torch.equal(vectors.masks, reviews.masks())
    modelled = (design.initiation_interval, design.initiation_interval_max, design.latency)
    sim = design.simulate(emitted.folder)  # 30 % valid gaps and 30 % backpressure after a clean phase; masks too
    assert sim["mismatches"] == 0 and sim["out_beats"] == sim["expected_out_beats"] == 6
    assert (sim["initiation_interval"], sim["initiation_interval_max"], sim["latency_cycles"]) == modelled
    rtl = RtlModel(emitted.folder / "rtl", vectors.meta["top"])
    assert [rtl(row, m) for row, m in zip(vectors.inputs[:3].tolist(), vectors.masks[:3].tolist())] == (
        vectors.expected[:3].tolist())


def test_the_accuracy_task_checks_the_reference_against_the_fake_quant_model(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOW_OFFLINE", "1")
    monkeypatch.setenv("FLOW_CACHE_DIR", str(tmp_path / "cache"))
    config = load_config(CONFIG, SMOKE)
    record = bert_rtl.accuracy_task(config, tmp_path / "out", str(_imdb(tmp_path / "imdb")), progress=False, batch=5,
                                    check=10, log=lambda _: None)
    assert (record["reviews"], record["reviews_full_length"]) == (24, 12)  # every other review has 3 words
    assert record["reference_check"]["reviews"] == 10 == record["reference_check"]["equal_code_for_code"]
    assert record["hardware_accuracy"] == record["accuracy"]["fake_quant"] and "exact" not in record["accuracy"]
    assert record["accuracy"]["float"] == record["accuracy"]["float_masked"]  # the body = HF's model, both masked
    assert record["reference_check"]["exact_accuracy"] == record["reference_check"]["fake_quant_accuracy"]
    assert json.loads((tmp_path / "out" / "accuracy.json").read_text())["accuracy"] == record["accuracy"]
    for name in ("float_masked", "float", "fake_quant"):
        assert record["accuracy"][name] in {k / 24 for k in range(25)}


def test_the_accuracy_task_runs_the_exact_reference_on_the_whole_split_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOW_OFFLINE", "1")
    monkeypatch.setenv("FLOW_CACHE_DIR", str(tmp_path / "cache"))
    record = bert_rtl.accuracy_task(load_config(CONFIG, SMOKE), tmp_path / "out", str(_imdb(tmp_path / "imdb")),
                                    progress=False, batch=5, check=24, log=lambda _: None)
    assert record["reference_check"]["reviews"] == 24 == record["reference_check"]["equal_code_for_code"]
    assert record["hardware_accuracy"] == record["accuracy"]["exact"] == record["accuracy"]["fake_quant"]
    assert record["hardware_accuracy_source"] == "the exact reference itself on all 24 reviews"
