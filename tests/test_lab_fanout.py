"""Labs run as many processes: results-file merges under a lock, the fanout's job graph and
scheduler, and the device flag (CPU here; the GPU path runs where one is lent)."""
from __future__ import annotations

import json
import sys
from multiprocessing import Pool
from pathlib import Path

import pytest
import torch

from flow.labs.common import update_json
from flow.labs.fanout import Job, lab_jobs, run_jobs
from flow.labs.lab1 import _store
from flow.labs.search_harness import merge_studies
from flow.train import TrainConfig, evaluate, train
from flow.train.device import current_device, use_device


def _add_study(args: tuple[str, int]) -> None:
    path, seed = args
    name = f"study-seed{seed}"
    record = {"task": "t", "studies": {name: {"seed": seed, "commits": [f"c{seed}"]}}, "float_val": {str(seed): 0.5},
              "float_test": {str(seed): 0.4}}
    update_json(Path(path), record, merge_studies({name}, lambda r: r.__setitem__("count", len(r["studies"]))))


def test_processes_adding_studies_to_one_file_lose_none(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    with Pool(4) as pool:
        pool.map(_add_study, [(str(path), seed) for seed in range(8)])
    record = json.loads(path.read_text())
    assert list(record["studies"]) == [f"study-seed{s}" for s in range(8)]  # ordered by seed
    assert record["float_val"] == {str(s): 0.5 for s in range(8)}
    assert record["float_test"] == {str(s): 0.4 for s in range(8)}
    assert record["commits"] == sorted(f"c{s}" for s in range(8))
    assert record["count"] == 8  # derived over the merged studies, not this process's


def test_a_stale_copy_of_another_processes_study_does_not_overwrite_it(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    update_json(path, {"studies": {"a": {"seed": 0, "best": 2}}}, merge_studies({"a"}))
    stale = {"studies": {"a": {"seed": 0, "best": 1}, "b": {"seed": 1, "best": 5}}}
    merged = update_json(path, stale, merge_studies({"b"}))
    assert merged["studies"] == {"a": {"seed": 0, "best": 2}, "b": {"seed": 1, "best": 5}}


def test_lab1_seeds_written_by_two_processes_keep_each_others_points(tmp_path: Path) -> None:
    path = tmp_path / "quantize_full.json"
    first = {"points": [{"seed": 1, "width": 4}], "floats": [{"seed": 1, "test": 0.8}]}
    _store(path, first, 1)
    second = {"points": [{"seed": 0, "width": 4}, {"seed": 0, "width": 8}], "floats": [{"seed": 0, "test": 0.7}]}
    merged = _store(path, second, 0)
    assert [(p["seed"], p["width"]) for p in merged["points"]] == [(0, 4), (0, 8), (1, 4)]
    assert [f["seed"] for f in merged["floats"]] == [0, 1]
    assert merged["seeds"] == [0, 1]
    assert json.loads(path.read_text())["points"] == merged["points"]


def test_fanout_jobs_wait_for_what_they_need() -> None:
    jobs = {j.name: j for j in lab_jobs("full", "cuda", (0, 1))}
    assert len(jobs) == 2 * (2 + 3 + 2 + 3)
    assert jobs["lab1-prune-seed1"].after == ("lab1-quantize",)
    assert jobs["lab2-compress-retrain-seed0"].after == ("lab2-samplers",)
    assert all(j.after == ("lab1-quantize",) for n, j in jobs.items() if n.startswith("lab3"))
    assert all("--device" in j.argv and j.argv[j.argv.index("--device") + 1] == "cuda" for j in jobs.values())
    formats = [j.argv[j.argv.index("--formats") + 1].split(",") for n, j in jobs.items() if n.endswith("seed0")
               and n.startswith("lab3")]
    from flow.labs.lab3 import FORMATS_SPACE
    assert sorted(f for group in formats for f in group) == sorted(FORMATS_SPACE)  # every format, once


def test_run_jobs_orders_by_dependency_and_stops_at_the_deadline(tmp_path: Path) -> None:
    stamp = tmp_path / "order.txt"

    def job(name: str, seconds: float, after: tuple[str, ...] = (), group: str = "") -> Job:
        code = f"import time; open({str(stamp)!r}, 'a').write('{name}\\n'); time.sleep({seconds})"
        return Job(name, [sys.executable, "-c", code], after, group or name)

    jobs = [job("b", 0.1, ("a",)), job("a", 0.3), job("slow", 30)]
    finished = run_jobs(jobs, max_jobs=2, deadline_s=3.0, log_dir=tmp_path / "logs", poll_s=0.05)
    order = stamp.read_text().split()
    assert order[-1] == "b" and set(order[:2]) == {"a", "slow"}  # b waited for a although listed first
    codes = {j.name: j.returncode for j in finished}
    assert codes["a"] == 0 and codes["b"] == 0 and codes["slow"] not in (0, None)  # stopped at the deadline


def test_device_flag_trains_and_evaluates_on_the_chosen_device() -> None:
    use_device("cpu")
    model = torch.nn.Linear(3, 2)
    batches = [{"input": torch.randn(4, 3), "labels": torch.tensor([0, 1, 0, 1])}]

    class Wrap(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return self.inner(input)

    wrapped = Wrap()
    train(wrapped, batches, TrainConfig(max_steps=2, lr=0.1), progress=False)
    assert evaluate(wrapped, batches, progress=False).samples == 4
    assert current_device() == torch.device("cpu") and next(wrapped.parameters()).device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU; use --device cpu"):
            use_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        use_device("tpu")
    assert current_device() == torch.device("cpu")  # a refused device changes nothing


def test_a_best_model_not_kept_is_rebuilt_from_its_trial(tmp_path: Path) -> None:
    import optuna

    from flow.labs.search_harness import BestKeeper, tested_summary

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    keeper, rebuilt = BestKeeper(tmp_path, "s"), []

    def rebuild(trial: optuna.trial.FrozenTrial) -> torch.nn.Module:
        rebuilt.append(trial.params)
        return torch.nn.Linear(1, 1)

    with pytest.raises(RuntimeError, match="was not kept"):
        tested_summary(study, {}, keeper, lambda model, desc: 0.75, "memory")
    summary = tested_summary(study, {}, keeper, lambda model, desc: 0.75, "memory", rebuild=rebuild,
                             validate=lambda model: 0.5)
    assert rebuilt == [study.best_trial.params]
    assert summary["test"] == 0.75
    assert summary["rebuilt"] == {"device": "cpu", "val": 0.5, "trial_val": study.best_value}
    again = tested_summary(study, summary, keeper, lambda model, desc: 0.0, "memory")  # reused, not rebuilt twice
    assert again["test"] == 0.75 and again["rebuilt"] == summary["rebuilt"] and len(rebuilt) == 1
