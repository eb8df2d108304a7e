"""Lab 3 smoke preset on a small synthetic IMDb: the width search and one study per format run for
two seeds, with bits per weight, test accuracy of the selected models and figures."""
import pytest
import torch

from flow.labs import lab3
from flow.models.bert import build_bert
from flow.passes import quantize_module
from tests.test_lab1 import write_reviews


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab3")
    write_reviews(root / "imdb", 400, seed=2)
    torch.set_num_threads(1)
    results = lab3.run("all", "smoke", out=root / "out", imdb_dir=str(root / "imdb"), progress=False,
                       log=lambda _: None, seeds=SEEDS)
    return root, results


SEEDS = (0, 1)


def test_width_search(smoke):
    root, results = smoke
    record = results["widths"]
    assert sorted(s["seed"] for s in record["studies"].values()) == list(SEEDS)
    assert sorted(record["float_val"]) == sorted(record["float_test"]) == ["0", "1"]  # each seed's own float base
    assert all(0.0 <= v <= 1.0 for v in record["float_test"].values())
    assert (root / "out" / "lab1" / "base" / "checkpoints" / "bert_tiny_scratch_seed1_smoke.pt").exists()
    study = record["studies"]["lab3-widths-tpe-seed0-smoke"]
    assert study["trials"] == lab3.PRESETS["smoke"]["trials"] and 0.0 <= study["test"] <= 1.0
    params = study["best"]["params"]
    widths = [v for k, v in params.items() if k.endswith(".fixed.width")]
    assert all(w in (8, 16, 32) for w in widths)
    assert 8 <= study["best"]["attrs"]["bits_per_weight"] <= 32
    assert (root / "out" / "widths_smoke.png").stat().st_size > 10_000


def test_one_study_per_format_with_bits(smoke):
    root, results = smoke
    record = results["formats"]
    assert sorted((s["format"], s["seed"]) for s in record["studies"].values()) == sorted(
        (f, seed) for f in lab3.PRESETS["smoke"]["formats"] for seed in SEEDS)
    by_format = {s["format"]: s for s in record["studies"].values() if s["seed"] == 0}
    for study in record["studies"].values():
        assert set(study["quantized_layers"]) == {14} and study["at_chance"] == sum(v <= 0.52 for v in study["values"])
    assert 2.0 < by_format["ternary"]["best"]["attrs"]["bits_per_weight"] < 2.5  # 2 bits + a float32 per row
    assert 4 <= by_format["log"]["best"]["attrs"]["bits_per_weight"] <= 6
    assert by_format["fixed"]["best"]["attrs"]["quantized_layers"] == 14
    assert (root / "out" / "formats_smoke.png").stat().st_size > 10_000


def test_average_weight_bits():
    model, _ = build_bert(False, num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64)
    assert lab3.average_weight_bits(model) == 32.0
    quantize_module(model, {"by": "type", "linear": lab3.layer_table({"name": "fixed", "width": 8, "frac_width": 4})})
    assert lab3.average_weight_bits(model) == 8.0


def test_bad_sampler_and_format(tmp_path):
    with pytest.raises(ValueError, match="unsuitable sampler 'grid' for lab 3"):
        lab3.run("widths", "smoke", out=tmp_path, sampler="grid")
