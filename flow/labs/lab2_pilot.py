"""Lab 2 budget pilot: train a fixed sample of the search space's architectures (the largest
included) under candidate trial budgets, to find one where few trials end at chance within the
time ceiling. Each (budget, architecture) is stored as measured, so a stopped pilot resumes.

``python -m flow.labs.lab2_pilot --budgets steps500,steps500_lr1e3 --archs 10 --threads 1``
writes results/lab2/pilot.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import optuna

from flow.labs.common import CHANCE, lab_arguments, run_lab, run_metadata, write_json
from flow.labs.lab2 import PRESETS, build_architecture, built_shape
from flow.labs.search_harness import SearchData, TrialBudget
from flow.paths import current_commit, results_dir
from flow.search import ArchitectureChoice, ArchitectureSpace

#: Candidate budgets; ``stored`` is the budget the stored lab 2 studies ran.
BUDGETS: dict[str, TrialBudget] = {
    "stored": TrialBudget(max_length=32, train_samples=4000, val_samples=1000, batch_size=16),  # the stored studies
    "steps500": TrialBudget(max_length=32, train_samples=8000, val_samples=1000, batch_size=16, lr=5e-4,
                            warmup_ratio=0.1),
    "steps500_lr1e3": TrialBudget(max_length=32, train_samples=8000, val_samples=1000, batch_size=16, lr=1e-3,
                                  warmup_ratio=0.2),
    "steps250_lr1e3": TrialBudget(max_length=32, train_samples=4000, val_samples=1000, batch_size=16, lr=1e-3,
                                  warmup_ratio=0.2),
    "steps250_lr2e3": TrialBudget(max_length=32, train_samples=4000, val_samples=1000, batch_size=16, lr=2e-3,
                                  warmup_ratio=0.3),
}
CEILING_S = 180.0  # per trial, on 2 idle cores


def architectures(space: ArchitectureSpace, count: int, seed: int = 0) -> list[ArchitectureChoice]:
    """The space's largest architecture (deepest, widest, no Identity) and ``count`` seeded random draws."""
    largest = ArchitectureChoice(max(space.layers), space.heads_for(max(space.hidden), max(space.heads)),
                                 max(space.hidden), max(space.intermediate))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [largest, *(space.suggest(study.ask()) for _ in range(count))]


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Trials at chance and time per trial of one budget's runs."""
    seconds = [r["seconds"] for r in runs]
    chance = sum(r["val"] <= CHANCE for r in runs)
    return {"trials": len(runs), "at_chance": chance, "at_chance_fraction": chance / len(runs),
            "best_val": max(r["val"] for r in runs), "median_val": statistics.median(r["val"] for r in runs),
            "median_seconds": statistics.median(seconds), "max_seconds": max(seconds),
            "largest_seconds": next(r["seconds"] for r in runs if r["arch"] == 0)}


def pilot(budget_names: tuple[str, ...], count: int, out: Path, imdb_dir: str | None, log=print,
          budgets: dict[str, TrialBudget] = BUDGETS, space: ArchitectureSpace | None = None) -> dict[str, Any]:
    """Train every architecture under every named budget (stored runs are skipped); returns the record."""
    unknown = [b for b in budget_names if b not in budgets]
    if unknown:
        raise ValueError(f"unknown budget(s) {unknown}; use {', '.join(budgets)}")
    path = out / "pilot.json"
    space = space or PRESETS["full"]["space"]
    archs = architectures(space, count)
    record = json.loads(path.read_text()) if path.exists() else {
        "task": "budget_pilot", "ceiling_seconds": CEILING_S, "chance": CHANCE, "seed": 0,
        "architectures": [{**a.config(), "identity": len(a.identity)} for a in archs], "budgets": {},
        "meta": run_metadata()}
    listed = [{**a.config(), "identity": len(a.identity)} for a in archs]
    if listed[:len(record["architectures"])] != record["architectures"]:
        raise ValueError(f"{path} lists other architectures than this space and seed draw; move it aside")
    record["architectures"] = max(listed, record["architectures"], key=len)  # more --archs extend the sample
    for name in budget_names:
        budget = budgets[name]
        entry = record["budgets"].setdefault(name, {"budget": budget.as_dict(), "runs": []})
        done = {r["arch"] for r in entry["runs"]}
        data = None
        for index, choice in enumerate(archs):
            if index in done:
                continue
            data = data or SearchData(budget, imdb_dir, progress=False)
            start = time.perf_counter()
            model = build_architecture(choice, seed=0)
            data.train(model, seed=0)
            val = data.val_accuracy(model)
            entry["runs"].append({"arch": index, "val": val, "seconds": round(time.perf_counter() - start, 1),
                                  "parameters": built_shape(model)["parameters"], "commit": current_commit()})
            entry["summary"] = summarize(entry["runs"])
            write_json(path, record)
            log(f"[{name}] arch {index} {choice.config()} identity {len(choice.identity)}: val {val:.3f} "
                f"({time.perf_counter() - start:.0f} s)")
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flow.labs.lab2_pilot", description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", default="steps500,steps500_lr1e3", help=f"comma-separated, of {', '.join(BUDGETS)}")
    ap.add_argument("--archs", type=int, default=10, help="random architectures besides the largest")
    lab_arguments(ap, "lab2")
    a = ap.parse_args(argv)
    folder = Path(a.out) if a.out else results_dir("lab2")
    budgets = tuple(b.strip() for b in a.budgets.split(",") if b.strip())
    return run_lab("lab2_pilot", a.threads, lambda: pilot(budgets, a.archs, folder, a.imdb_dir), a.device)


if __name__ == "__main__":
    raise SystemExit(main())
