"""Lab 2 smoke preset on a small synthetic IMDb: three samplers and the compression-aware
variants run their budgets, record curves, built shapes and test accuracy, plot, and resume."""
import json

import pytest
import torch

from flow.labs import lab2
from tests.test_lab1 import write_reviews


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab2")
    write_reviews(root / "imdb", 300, seed=1)
    torch.set_num_threads(1)
    lines = []
    results = lab2.run("all", "smoke", out=root / "out", imdb_dir=str(root / "imdb"), log=lines.append)
    return root, results, lines


def test_every_sampler_runs_its_budget_and_is_tested(smoke):
    root, results, lines = smoke
    record = results["samplers"]
    trials = lab2.PRESETS["smoke"]["trials"]
    assert sorted(s["sampler"] for s in record["studies"].values()) == ["grid", "random", "tpe"]
    for study in record["studies"].values():
        assert study["trials"] == trials and len(study["curve"]) == trials
        assert study["curve"] == sorted(study["curve"])  # best so far never falls
        assert study["best"]["val"] == study["curve"][-1] and 0.0 <= study["test"] <= 1.0
        built = study["best"]["attrs"]["built"]
        assert built["num_hidden_layers"] == study["best"]["params"]["num_hidden_layers"]
        assert built["hidden_size"] == study["best"]["params"]["hidden_size"]
    assert set(record["comparison"]) == {"random", "grid", "tpe"}
    assert record["sizes"]["test"] == 64 and record["budget"]["train_samples"] == 64
    assert json.loads((root / "out" / "samplers_smoke.json").read_text())["studies"] == record["studies"]
    assert (root / "out" / "samplers_smoke.png").stat().st_size > 10_000
    assert any("warning: the grid has" in line for line in lines)


def test_compression_aware_variants(smoke):
    root, results, _ = smoke
    record = results["compress"]
    assert sorted(s["variant"] for s in record["studies"].values()) == ["no-retrain", "retrain"]
    assert record["sampler"] == lab2.best_sampler(results["samplers"])
    for study in record["studies"].values():
        assert "val_before_compression" in study["best"]["attrs"]
    assert (root / "out" / "compress_smoke.png").stat().st_size > 10_000


def test_rerun_resumes_without_new_trials(smoke):
    root, results, _ = smoke
    lines = []
    again = lab2.run("samplers", "smoke", out=root / "out", imdb_dir=str(root / "imdb"), log=lines.append)
    assert sum("already has 3 complete trials" in line for line in lines) == 3
    assert again["samplers"]["studies"] == results["samplers"]["studies"]


def test_unknown_sampler_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"unknown sampler\(s\) \['annealing'\]; use random, grid, tpe, nsga2"):
        lab2.run("samplers", "smoke", out=tmp_path, samplers=("annealing",))


def test_compressed_studies_run_task_1s_architectures_and_split_the_cost(smoke):
    import optuna

    root, results, _ = smoke
    record = results["compress"]
    storage = f"sqlite:///{root / 'out' / 'studies.db'}"
    for study in record["studies"].values():
        source = f"lab2-samplers-{study['sampler']}-seed{study['seed']}-smoke"
        paired = f"lab2-compress-{study['variant']}-{study['sampler']}-seed{study['seed']}-smoke"
        params = [[t.params for t in sorted(optuna.load_study(study_name=name, storage=storage).trials,
                                            key=lambda t: t.number)] for name in (source, paired)]
        assert params[0] == params[1]
    for variant, cost in record["compression_cost"].items():
        studies = [s for s in record["studies"].values() if s["variant"] == variant]
        assert cost["trials"] == sum(len(s["values"]) for s in studies) == cost["trained"] + cost["at_chance_before"]
        below = sum(b <= lab2.CHANCE for s in studies for b in s["val_before_compression"])
        assert cost["at_chance_before"] == below
    assert record["commits"] and all(s["commits"] == record["commits"] for s in record["studies"].values())


def test_figures_report_trials_at_chance(smoke):
    _, results, _ = smoke
    record = results["samplers"]
    studies = [s for s in record["studies"].values() if s["sampler"] == "grid"]
    chance = sum(v <= lab2.CHANCE for s in studies for v in s["values"])
    assert lab2.chance_note(record, "sampler", "grid") == f"{chance} of {3 * len(studies)} trials at chance"


def test_budget_pilot_measures_the_largest_and_random_architectures_and_resumes(tmp_path):
    from flow.labs import lab2_pilot

    write_reviews(tmp_path / "imdb", 300, seed=3)
    torch.set_num_threads(1)
    budgets = {"tiny": lab2.PRESETS["smoke"]["budget"]}
    space = lab2.PRESETS["smoke"]["space"]
    record = lab2_pilot.pilot(("tiny",), 2, tmp_path / "out", str(tmp_path / "imdb"), log=lambda _: None,
                              budgets=budgets, space=space)
    runs = record["budgets"]["tiny"]["runs"]
    assert [r["arch"] for r in runs] == [0, 1, 2]
    assert record["architectures"][0] == {"num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 64,
                                          "intermediate_size": 128, "identity": 0}
    summary = record["budgets"]["tiny"]["summary"]
    assert summary["at_chance"] == sum(r["val"] <= lab2.CHANCE for r in runs) and summary["trials"] == 3
    lines = []
    again = lab2_pilot.pilot(("tiny",), 2, tmp_path / "out", str(tmp_path / "imdb"), log=lines.append,
                             budgets=budgets, space=space)
    assert lines == [] and again["budgets"]["tiny"]["runs"] == runs
    more = lab2_pilot.pilot(("tiny",), 3, tmp_path / "out", str(tmp_path / "imdb"), log=lambda _: None,
                            budgets=budgets, space=space)
    assert more["architectures"][:3] == record["architectures"] and len(more["architectures"]) == 4
    assert [r["arch"] for r in more["budgets"]["tiny"]["runs"]] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"unknown budget\(s\) \['huge'\]; use tiny"):
        lab2_pilot.pilot(("huge",), 2, tmp_path / "out", None, budgets=budgets, space=space)


def test_refresh_rebuilds_per_trial_fields_from_the_studies(smoke, tmp_path):
    import shutil

    from flow.labs import refresh

    root, results, _ = smoke
    path = tmp_path / "compress_smoke.json"
    stripped = json.loads((root / "out" / "compress_smoke.json").read_text())
    for study in stripped["studies"].values():
        for key in ("values", "at_chance", "val_before_compression", "commits"):
            study.pop(key)
    stripped.pop("compression_cost")
    path.write_text(json.dumps(stripped))
    shutil.copy(root / "out" / "studies.db", tmp_path / "studies.db")
    again = refresh.refresh(path, str(tmp_path / "studies.db"))
    assert again["studies"] == results["compress"]["studies"]
    assert again["compression_cost"] == results["compress"]["compression_cost"]
