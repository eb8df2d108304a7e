"""Lab 1 smoke preset on a small synthetic IMDb: both tasks run for two seeds, store every point,
select on validation, resume, plot."""
import gzip
import json
import random

import pytest
import torch

from flow.labs import lab1

POSITIVE = "great wonderful superb moving brilliant loved enjoyable fun".split()
NEGATIVE = "awful boring terrible dull waste hated bad poor".split()
NEUTRAL = "the movie film plot actor scene story it was and a of".split()


def write_reviews(folder, n: int, seed: int) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train.jsonl.gz", "test.jsonl.gz"):
        with gzip.open(folder / name, "wt", encoding="utf-8") as handle:
            for i in range(n):
                label = int(i >= n // 2)
                words = [rng.choice(POSITIVE if label else NEGATIVE) if rng.random() < 0.3 else rng.choice(NEUTRAL)
                         for _ in range(rng.randint(8, 40))]
                handle.write(json.dumps({"text": " ".join(words), "label": label}) + "\n")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab1")
    write_reviews(root / "imdb", 400, seed=0)
    torch.set_num_threads(1)
    results = lab1.run("all", "smoke", out=root / "out", imdb_dir=str(root / "imdb"), progress=False,
                       log=lambda _: None, seeds=SEEDS)
    return root, results


SEEDS = (0, 1)


def test_quantize_task_measures_every_width_on_every_linear(smoke):
    root, results = smoke
    record = results["quantize"]
    widths = lab1.PRESETS["smoke"]["widths"]
    assert [(p["seed"], p["width"]) for p in record["points"]] == [(s, w) for s in SEEDS for w in widths]
    assert record["seeds"] == list(SEEDS) and [f["seed"] for f in record["floats"]] == list(SEEDS)
    assert all(0.0 <= p["qat_val"] <= 1.0 and p["commit"] for p in record["points"])
    assert len({p["qat"] for p in record["points"]}) > 1  # the seeds train different models
    assert {p["quantized_layers"] for p in record["points"]} == {14}  # 2 layers x 6 Linears + pooler + classifier
    assert all(0.0 <= p["ptq"] <= 1.0 and 0.0 <= p["qat"] <= 1.0 for p in record["points"])
    assert record["sizes"]["test"] == 128 and record["finetune"]["samples"] == 64
    on_disk = json.loads((root / "out" / "quantize_smoke.json").read_text())
    assert on_disk["points"] == record["points"]
    assert (root / "out" / "quantize_smoke.png").stat().st_size > 10_000


def test_prune_task_reaches_each_sparsity_with_both_methods(smoke):
    root, results = smoke
    record = results["prune"]
    assert record["start"]["width"] == lab1.best_width(results["quantize"])
    assert record["start"]["selected_by"] == "validation" and sorted(record["start"]["qat_val"]) == ["0", "1"]
    assert sorted((p["seed"], p["method"], p["sparsity"]) for p in record["points"]) == [
        (s, m, x) for s in SEEDS for m in ("l1", "random") for x in (0.3, 0.7)]
    assert all("finetuned_val" in p for p in record["points"])
    for point in record["points"]:
        assert abs(point["reached"] - point["sparsity"]) < 0.01
    assert (root / "out" / "prune_smoke.png").stat().st_size > 10_000


def test_a_second_run_resumes_from_the_stored_points(smoke, monkeypatch):
    root, results = smoke
    calls = []
    monkeypatch.setattr(lab1.Lab1, "test_accuracy", lambda self, model, desc: calls.append(desc) or 0.0)
    again = lab1.run("all", "smoke", out=root / "out", imdb_dir=str(root / "imdb"), progress=False,
                     log=lambda _: None, seeds=SEEDS)
    assert calls == []  # every point (and the float accuracy) came from the JSON
    assert again["quantize"]["points"] == results["quantize"]["points"]


def test_fixed_config_scales_the_frac_with_the_width():
    table = lab1.fixed_config(8)["linear"]
    assert (table["data_in_width"], table["data_in_frac_width"], table["weight_frac_width"]) == (8, 4, 4)
    assert lab1.fixed_config(5)["linear"]["bias_frac_width"] == 2


def test_the_starting_width_is_chosen_on_validation_not_test():
    points = [{"seed": 0, "width": 8, "qat": 0.90, "qat_val": 0.70}, {"seed": 0, "width": 16, "qat": 0.80, "qat_val": 0.75},
              {"seed": 1, "width": 8, "qat": 0.90, "qat_val": 0.72}, {"seed": 1, "width": 16, "qat": 0.80, "qat_val": 0.74}]
    assert lab1.best_width({"points": points}) == 16
    with pytest.raises(ValueError, match="width 8 \\(seed 0\\) has no validation accuracy; rerun task 1"):
        lab1.best_width({"points": [{"seed": 0, "width": 8, "qat": 0.9}]})


def test_seeds_flag_is_checked():
    from flow.labs.common import parse_seeds

    assert parse_seeds("0,1,2") == (0, 1, 2)
    with pytest.raises(ValueError, match="--seeds '0,x' is not a comma-separated list of integers"):
        parse_seeds("0,x")
    with pytest.raises(ValueError, match="needs distinct non-negative integers"):
        parse_seeds("1,1")


def test_task_2_recreates_a_missing_qat_checkpoint_and_records_it(smoke):
    """Task 1 ran elsewhere: task 2 trains the seed's QAT model again with the same recipe and records
    its accuracy beside task 1's (on one machine the recipe reproduces task 1's model exactly)."""
    root, results = smoke
    out = root / "out"
    width = results["prune"]["start"]["width"]
    (out / "checkpoints" / f"qat_{width}_seed1_smoke.pt").unlink()
    (out / "prune_smoke.json").rename(out / "prune_smoke_first.json")
    logs: list[str] = []
    again = lab1.run("prune", "smoke", out=out, imdb_dir=str(root / "imdb"), progress=False, log=logs.append,
                     seeds=SEEDS)["prune"]
    recreated = again["start"]["recreated"]
    assert list(recreated) == ["1"]
    assert recreated["1"]["qat_val"] == again["start"]["qat_val"]["1"]
    assert recreated["1"]["qat"] == again["start"]["qat"]["1"]
    assert recreated["1"]["base_val"] == next(f["val"] for f in results["quantize"]["floats"] if f["seed"] == 1)
    assert any("QAT checkpoint was missing; recreated" in line for line in logs)
    assert (out / "checkpoints" / f"qat_{width}_seed1_smoke.pt").is_file()
    first = json.loads((out / "prune_smoke_first.json").read_text())
    assert [p["finetuned"] for p in again["points"]] == [p["finetuned"] for p in first["points"]]


def test_the_unpruned_reference_is_the_model_actually_pruned():
    start = {"qat_val": {"0": 0.84, "1": 0.85}, "qat": {"0": 0.81, "1": 0.82},
             "recreated": {"1": {"qat_val": 0.86, "qat": 0.83, "base_val": 0.85}}}
    got = lab1.pruned_start(start)
    assert got["0"] == {"qat_val": 0.84, "qat": 0.81}  # task 1's own model
    assert (got["1"]["qat_val"], got["1"]["qat"]) == (0.86, 0.83)  # retrained here: its own figures
