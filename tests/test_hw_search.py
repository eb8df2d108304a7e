"""flow search hw on the digits MLP: a short NSGA-II study with three objectives, resumable, its
Pareto figure, and a confirmed point emitted, simulated bit-exact and synthesized."""
import json

import optuna

from flow.cli import main as cli
from flow.search.hardware import FOLDS, HwSearch, run


def test_short_study_front_and_a_confirmed_design(tmp_path):
    lines = []
    record = run(None, 5, str(tmp_path / "s.db"), tmp_path, seed=3, confirm_points=1, log=lines.append)
    assert record["trials"] == 5 and record["front"]
    for point in record["front"]:
        accuracy, cost, latency = point["values"]
        assert 0.0 <= accuracy <= 1.0 and cost > 0 and latency >= 3
    (confirmed,) = record["confirmed"]
    assert confirmed["mismatches"] == 0  # the RTL equals the exact reference on the whole test split
    assert confirmed["latency_measured"] == confirmed["latency_model"]
    assert confirmed["ii_measured"] == confirmed["ii_model"]
    assert confirmed["synthesized"]["DSP48E1"] == confirmed["estimated"]["DSP48E1"]
    assert (tmp_path / "pareto.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "hw_search.json").read_text())["trials"] == 5
    assert sum(line.startswith("[hw-digits_mlp-seed3] trial ") for line in lines) == 5
    again = run(None, 5, str(tmp_path / "s.db"), tmp_path, seed=3, confirm_points=0, log=lines.append)
    assert again["trials"] == 5 and lines[-1].startswith("[hw-digits_mlp-seed3] already has 5 complete trials")
    more = run(None, 8, str(tmp_path / "s.db"), tmp_path, seed=3, confirm_points=0, log=lines.append,
               cluster="local:2")  # the three missing trials as tasks on a 2-worker Dask cluster
    assert more["trials"] == 8
    assert sum(" done hw-digits_mlp-seed3 trial task " in line for line in lines) == 3


def test_choices_make_consistent_designs():
    search = HwSearch.from_config(None, log=lambda _: None)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(6):
        trial = study.ask()
        choice = search.suggest(trial)
        design = search.build(choice)  # parallelism chains: each in_par is the previous out_par
        for stage, (layer, c) in zip(design.graph.linear_stages, choice.items()):
            assert stage.name == layer and c["out_fold"] in FOLDS
            full = stage.in_par == stage.in_features and stage.out_par == stage.out_features
            assert (stage.constant is not None) == (full and c["multiplier"] == "lut")
        study.tell(trial, 0.0)


def test_bad_config_is_one_line(tmp_path, capsys):
    assert cli(["search", "hw", "--config", str(tmp_path / "missing.toml"), "--trials", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "missing.toml" in err


def test_a_choice_sets_each_layers_tables_over_the_design_config():
    search = HwSearch.from_config(None, log=lambda _: None)
    choice = {layer: {"width": 6, "weight_frac": 5, "data_frac": 6 if index == 0 else 2, "in_fold": 2 if index == 0 else None,
                      "out_fold": 8, "multiplier": "lut", "sparsity": 0.0}
              for index, layer in enumerate(search.layers)}
    config = search.design_config(choice, "pareto_7")
    assert config.design.name == "pareto_7" and search.config.design.name == "digits_mlp"  # a copy
    fc1, fc2 = config.quantization.layers["fc1"], config.quantization.layers["fc2"]
    assert (fc1.data_in_width, fc1.data_in_frac_width, fc1.data_in_signed, fc1.weight_frac_width) == (6, 6, False, 5)
    assert (fc2.data_in_frac_width, fc2.bias_width, fc2.data_out_width) == (2, 8, 8)  # data_out: the default's
    assert config.parallelism.layers["fc1"].in_par == 32 and config.parallelism.layers["fc2"].in_par == "auto"
    assert config.parallelism.layers["fc3"].out_par == 10  # a fold of 8 does not divide 10: every element
    assert config.to_dict()["parallelism"]["fc2"] == {"out_par": 2, "in_par": "auto", "multiplier": "auto",
                                                      "pipeline_every": 0}
    assert config.training_hash() == search.config.training_hash()  # the cached float model stays the one
