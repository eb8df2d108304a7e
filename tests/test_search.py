"""flow.search: storage, samplers, spaces (checked on the built model), the trial budget with
several workers, resuming a killed study, best-so-far curves, and the bad inputs in one line."""
import subprocess
import sys
import textwrap
import warnings

import optuna
import pytest
import torch
from torch import nn

from flow.labs.lab2 import build_architecture, built_shape
from flow.search import ArchitectureSpace, PrecisionSpace, StudySpec, best_so_far, make_sampler, open_storage, run_study
from flow.search.plot import curve_stats
from flow.search.runner import _load

QUIET = {"log": lambda _: None}


# ---- storage and samplers ----
def test_storage_kinds(tmp_path):
    assert open_storage(tmp_path / "a.db") == f"sqlite:///{(tmp_path / 'a.db').resolve()}"
    assert open_storage("mysql://user@host/db") == "mysql://user@host/db"  # postgresql is opened at once: test_cluster.py
    assert isinstance(open_storage(f"journal:{tmp_path / 'j.txt'}"), optuna.storages.JournalStorage)
    with pytest.raises(ValueError, match="cannot tell which storage 'studies' is; pass a .db path"):
        open_storage("studies")


def test_sampler_names_and_grid_budget():
    assert isinstance(make_sampler("tpe", 0), optuna.samplers.TPESampler)
    assert isinstance(make_sampler("nsga2", 0), optuna.samplers.NSGAIISampler)
    with pytest.raises(ValueError, match="unknown sampler 'bayes'; use one of random, grid, tpe, nsga2"):
        make_sampler("bayes", 0)
    with pytest.raises(ValueError, match="the grid sampler needs a grid"):
        make_sampler("grid", 0)
    with pytest.warns(UserWarning, match="the grid has 6 points but the budget is 4 trials: the grid sampler visits 4"):
        make_sampler("grid", 0, {"a": [1, 2, 3], "b": [0, 1]}, n_trials=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_sampler("grid", 0, {"a": [1, 2]}, n_trials=4)  # a grid within the budget: no warning


# ---- spaces ----
def test_bad_spaces_are_one_line_errors():
    with pytest.raises(ValueError, match="the search space is empty: hidden has no choices"):
        ArchitectureSpace(hidden=())
    with pytest.raises(ValueError, match=r"head count\(s\) \[5, 7\] divide no hidden size in \[128, 256\]"):
        ArchitectureSpace(heads=(2, 5, 7), hidden=(128, 256))
    with pytest.raises(ValueError, match="the search space is empty: no formats and no full precision"):
        PrecisionSpace(("fc",), {}, allow_full=False)
    with pytest.raises(ValueError, match="unknown format 'posit' in the precision space"):
        PrecisionSpace(("fc",), {"posit": {"width": (8,)}})
    with pytest.raises(ValueError, match="the search space is empty: fixed.width has no choices"):
        PrecisionSpace(("fc",), {"fixed": {"width": ()}})


def test_heads_that_do_not_divide_are_reparameterized_and_counted():
    space = ArchitectureSpace(layers=(1,), heads=(2, 3, 4), hidden=(8, 12), intermediate=(16,), identity_choices=False)
    assert space.heads_for(8, 3) == 2 and space.heads_for(12, 4) == 4 and space.heads_for(8, 4) == 4
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(space.grid(), seed=0), direction="maximize")
    study.optimize(lambda t: float(space.suggest(t).num_attention_heads), n_trials=6)
    counted = {t.params["hidden_size"]: t.user_attrs.get("heads_reparameterized") for t in study.trials
               if t.params["num_attention_heads"] == 3}
    assert counted == {8: "3->2", 12: None}  # 3 divides 12, not 8


def test_architecture_really_changes_depth_heads_and_identity():
    space = ArchitectureSpace(layers=(1, 3), heads=(2, 4), hidden=(16, 32), intermediate=(32,))
    grid = space.grid()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3), direction="maximize")
    seen = set()

    def objective(trial):
        choice = space.suggest(trial)
        model = build_architecture(choice, seed=0)
        shape = built_shape(model)
        assert len(model.bert.encoder.layer) == choice.num_hidden_layers == shape["num_hidden_layers"]
        attention = model.bert.encoder.layer[0].attention.self
        assert attention.num_attention_heads == choice.num_attention_heads
        assert attention.attention_head_size * attention.num_attention_heads == choice.hidden_size
        assert all(isinstance(model.get_submodule(p), nn.Identity) for p in choice.identity)
        assert set(trial.params) <= set(grid)  # the grid lists every parameter suggest draws
        out = model(input_ids=torch.randint(5, 100, (2, 6))).logits
        assert out.shape == (2, 2)
        seen.add((choice.num_hidden_layers, choice.num_attention_heads, len(choice.identity) > 0))
        return 0.0

    study.optimize(objective, n_trials=12)
    assert {depth for depth, _, _ in seen} == {1, 3} and {heads for _, heads, _ in seen} == {2, 4}


def test_precision_space_draws_format_arguments_or_full():
    space = PrecisionSpace(("a", "b"), {"fixed": {"width": (8, 16), "frac_width": (2, 4)}}, allow_full=True)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    choices = []
    study.optimize(lambda t: choices.append(space.suggest(t)) or 0.0, n_trials=10)
    assert any(c["a"] is None for c in choices) and any(c["a"] is not None for c in choices)
    fixed = [c["b"] for c in choices if c["b"] is not None]
    assert all(set(c) == {"name", "width", "frac_width"} and c["width"] in (8, 16) for c in fixed)


# ---- the runner: budget, resume, several workers ----
def quadratic(trial):
    x = trial.suggest_float("x", -3, 3)
    return -(x - 1) ** 2


def test_budget_progress_lines_and_best_so_far(tmp_path):
    lines = []
    spec = StudySpec("s", str(tmp_path / "s.db"), "random", seed=4, n_trials=5)
    study = run_study(spec, quadratic, lines.append)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 5
    assert len(lines) == 5 and lines[-1].startswith("[s] trial 4 (5/5) value ")
    assert "| best " in lines[-1] and " x=" in lines[-1]
    curve = best_so_far(study)
    values = [t.value for t in sorted(study.trials, key=lambda t: t.number)]
    assert curve == [max(values[:i + 1]) for i in range(5)]
    again = run_study(spec, quadratic, lines.append)  # a finished study runs nothing more
    assert len(again.trials) == 5 and lines[-1] == "[s] already has 5 complete trials (budget 5)"
    assert study.user_attrs["sampler"] == "random" and study.user_attrs["n_trials"] == 5


KILLED = textwrap.dedent("""
    import os, sys
    from flow.search import StudySpec, run_study

    def objective(trial):
        x = trial.suggest_float("x", -3, 3)
        if trial.number == 3:
            os._exit(9)  # killed in the middle of trial 3
        return -(x - 1) ** 2

    run_study(StudySpec("k", sys.argv[1], "tpe", seed=1, n_trials=6), objective, lambda _: None)
""")


def test_killed_study_resumes_from_its_stored_trials(tmp_path):
    db = str(tmp_path / "k.db")
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    assert subprocess.run([sys.executable, str(script), db], timeout=120).returncode == 9
    before = optuna.load_study(study_name="k", storage=open_storage(db))
    stored = {t.number: t.value for t in before.trials if t.state == optuna.trial.TrialState.COMPLETE}
    killed = [t for t in before.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert sorted(stored) == [0, 1, 2] and [t.number for t in killed] == [3]

    lines = []
    study = run_study(StudySpec("k", db, "tpe", seed=1, n_trials=6), quadratic, lines.append)
    complete = {t.number: t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert len(complete) == 6
    assert {n: complete[n].value for n in (0, 1, 2)} == stored  # kept, not rerun
    retry = [t for t in complete.values() if t.user_attrs.get("retry_of") == 3]
    assert len(retry) == 1 and retry[0].params == killed[0].params  # the killed trial's parameters, run again
    assert lines[0] == "[k] 1 trial(s) left running by a killed run: queued again"


WORKER = textwrap.dedent("""
    import os, sys, time
    from flow.search import StudySpec, run_study

    def objective(trial):
        x = trial.suggest_float("x", -3, 3)
        trial.set_user_attr("pid", os.getpid())
        time.sleep(0.3)
        return -(x - 1) ** 2

    run_study(StudySpec("w", sys.argv[1], "random", seed=0, n_trials=10, worker=int(sys.argv[2])), objective,
              lambda _: None)
""")


@pytest.mark.parametrize("storage", ["w.db", "journal:w.txt"])
def test_two_workers_finish_the_budget_with_no_trial_lost_or_twice(tmp_path, storage):
    target = storage.replace("w.", f"{tmp_path}/w.") if storage.startswith("journal:") else str(tmp_path / storage)
    _load(StudySpec("w", target, "random", n_trials=10))  # the main run creates the study
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [subprocess.Popen([sys.executable, str(script), target, str(n)]) for n in (1, 2)]
    assert [w.wait(timeout=180) for w in workers] == [0, 0]
    study = optuna.load_study(study_name="w", storage=open_storage(target))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 10  # exactly the budget
    assert sorted(t.number for t in complete) == list(range(10))  # none lost, none run twice
    assert len({t.params["x"] for t in complete}) == 10  # the workers' samplers are seeded apart
    assert len({t.user_attrs["pid"] for t in complete}) == 2  # both workers ran trials


def test_curve_stats_mean_and_spread():
    mean, low, high = curve_stats([[0.5, 0.6], [0.7, 0.7, 0.8]])
    assert mean == pytest.approx([0.6, 0.65, 0.8]) and low == [0.5, 0.6, 0.8] and high == [0.7, 0.7, 0.8]


def test_grid_sampler_never_lists_a_huge_grid_and_visits_distinct_points():
    space = ArchitectureSpace()  # 1.7e17 grid points with the Linear/Identity choices
    with pytest.warns(UserWarning, match="the grid has 168,"):
        sampler = make_sampler("grid", 0, space.grid(), n_trials=5)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(lambda t: float(space.suggest(t).hidden_size), n_trials=5)
    indices = [t.system_attrs["grid_index"] for t in study.trials]
    assert len(set(indices)) == 5
    for trial, index in zip(study.trials, indices):
        point = sampler.point(index)
        assert all(point[name] == value for name, value in trial.params.items())


def test_a_small_grid_is_visited_exhaustively_then_refused():
    study = optuna.create_study(sampler=make_sampler("grid", 3, {"a": [1, 2], "b": ["x", "y"]}))
    study.optimize(lambda t: t.suggest_categorical("a", [1, 2]) + len(t.suggest_categorical("b", ["x", "y"])),
                   n_trials=4)
    assert sorted((t.params["a"], t.params["b"]) for t in study.trials) == [(1, "x"), (1, "y"), (2, "x"), (2, "y")]
    with pytest.raises(ValueError, match="every one of the grid's 4 points has been visited"):
        study.optimize(lambda t: 0.0, n_trials=1)


def test_enqueued_parameters_pair_a_new_study_and_every_trial_names_its_commit(tmp_path):
    from flow.paths import current_commit
    from flow.search.runner import trial_commits

    storage = str(tmp_path / "s.db")

    def objective(trial):
        return trial.suggest_int("x", 0, 1000) / 1000

    first = run_study(StudySpec("a", storage, "random", seed=1, n_trials=5), objective, **QUIET)
    params = [t.params for t in first.trials]
    paired = run_study(StudySpec("b", storage, "random", seed=2, n_trials=5, enqueue=params), objective, **QUIET)
    assert [t.params for t in paired.trials] == params  # the same architectures, in the same order
    unpaired = run_study(StudySpec("c", storage, "random", seed=2, n_trials=5), objective, **QUIET)
    assert [t.params for t in unpaired.trials] != params
    assert {t.user_attrs["commit"] for t in paired.trials} == {current_commit()}
    assert trial_commits(paired) == [current_commit()]
