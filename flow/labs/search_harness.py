"""What lab 2 and lab 3 share: the trial budget's data, training and scoring, keeping the best
trial's model, testing it on the whole test split, and the per-study results record."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from torch import nn

from flow.data.loader import TokenizedDataset, make_loader
from flow.data.pipeline import IMDbData, prepare_imdb
from flow.labs.common import CHANCE
from flow.search.runner import best_so_far, done, trial_commits
from flow.train import TrainConfig, evaluate, train
from flow.train.device import describe_device


@dataclass(frozen=True)
class TrialBudget:
    """The fixed budget of every trial of a figure: data, sequence length and training recipe."""

    max_length: int
    train_samples: int
    val_samples: int
    epochs: float = 1.0
    batch_size: int = 16
    lr: float = 5e-4
    warmup_ratio: float = 0.1
    test_limit: int | None = None  # None: the whole 25,000-review test split

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def subset(dataset: TokenizedDataset, count: int, seed: int = 0) -> TokenizedDataset:
    """A seeded random subset (the same for every trial and study of a figure)."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count].tolist()
    return TokenizedDataset([dataset.input_ids[i] for i in order], [dataset.labels[i] for i in order])


class SearchData:
    """IMDb tokenized once for a budget: training and validation subsets, and the test split."""

    def __init__(self, budget: TrialBudget, imdb_dir: str | None = None, progress: bool = True) -> None:
        self.budget, self.progress = budget, progress
        self.imdb: IMDbData = prepare_imdb(budget.max_length, "auto", seed=0, imdb_dir=imdb_dir,
                                           test_limit=budget.test_limit)
        self.pad = self.imdb.tokenizer.pad_token_id
        self.train_set = subset(self.imdb.train, budget.train_samples)
        self.val_loader = make_loader(subset(self.imdb.val, budget.val_samples), 256, sort_by_length=True,
                                      pad_id=self.pad)
        self.test_loader = make_loader(self.imdb.test, 256, sort_by_length=True, pad_id=self.pad)

    def describe(self) -> dict[str, Any]:
        return {**self.imdb.describe(), "budget": self.budget.as_dict(),
                "trial_sizes": {"train": len(self.train_set), "val": self.budget.val_samples}}

    def train(self, model: nn.Module, seed: int, samples: int | None = None, lr: float | None = None) -> float:
        """Train ``model`` on the budget's training subset (or its first ``samples``); returns seconds."""
        data = self.train_set if samples is None else subset(self.train_set, samples, seed=1)
        loader = make_loader(data, self.budget.batch_size, shuffle=True, seed=seed, pad_id=self.pad)
        cfg = TrainConfig(lr=lr or self.budget.lr, epochs=self.budget.epochs, warmup_ratio=self.budget.warmup_ratio,
                          seed=seed)
        return train(model, loader, cfg, progress=False).seconds

    def val_accuracy(self, model: nn.Module) -> float:
        return evaluate(model, self.val_loader, progress=False).accuracy

    def test_accuracy(self, model: nn.Module, desc: str = "test") -> float:
        return evaluate(model, self.test_loader, progress=self.progress, desc=desc).accuracy


class BestKeeper:
    """Saves a trial's whole model when it is the best complete trial so far, so the study's best
    model exists after the study (and after a resume) without training it again."""

    def __init__(self, folder: Path, study_name: str) -> None:
        self.folder = folder / "checkpoints"
        self.study_name = study_name

    def path(self, number: int) -> Path:
        return self.folder / f"{self.study_name}_trial{number}.pt"

    def offer(self, study: optuna.Study, trial: optuna.Trial, value: float, model: nn.Module) -> None:
        curve = best_so_far(study)
        if not curve or value > curve[-1]:
            self.folder.mkdir(parents=True, exist_ok=True)
            torch.save(model, self.path(trial.number))

    def load(self, number: int) -> nn.Module | None:
        path = self.path(number)
        return torch.load(path, weights_only=False, map_location="cpu") if path.exists() else None


def study_summary(study: optuna.Study, per_trial: tuple[str, ...] = ()) -> dict[str, Any]:
    """Curve, best trial, timing, every trial's value (and the ``per_trial`` user attributes), the
    trials at chance and the commits that ran them, of a (single-objective, maximizing) study."""
    trials = sorted(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)),
                    key=lambda t: t.number)
    best = max(trials, key=lambda t: (t.value, -t.number))
    return {"trials": done(study), "curve": best_so_far(study),
            "best": {"number": best.number, "val": best.value, "params": best.params, "attrs": best.user_attrs},
            "values": [t.value for t in trials], "at_chance": sum(t.value <= CHANCE for t in trials),
            **{attr: [t.user_attrs.get(attr) for t in trials] for attr in per_trial},
            "trial_seconds": [t.user_attrs.get("seconds") for t in trials],
            "wall_seconds": round(sum(t.user_attrs.get("seconds", 0.0) for t in trials), 1),
            "commits": trial_commits(study)}


def tested_summary(study: optuna.Study, previous: dict[str, Any], keeper: BestKeeper,
                   test: Callable[[nn.Module, str], float], storage: str,
                   per_trial: tuple[str, ...] = (),
                   rebuild: Callable[[optuna.trial.FrozenTrial], nn.Module] | None = None,
                   validate: Callable[[nn.Module], float] | None = None) -> dict[str, Any]:
    """:func:`study_summary` with the test accuracy of the best trial's kept model (reused from
    ``previous``, the study's last record, while the best trial is the same). Kept models are a
    cache: when the best one is missing (its trial ran on another machine), ``rebuild`` trains it
    again from the trial's parameters and seed, and the record says so, with the rebuilt model's
    validation accuracy beside the trial's."""
    summary = study_summary(study, per_trial)
    best = summary["best"]["number"]
    if previous.get("best", {}).get("number") == best and "test" in previous:
        return {**summary, **{k: previous[k] for k in ("test", "rebuilt") if k in previous}}
    model = keeper.load(best)
    if model is not None:
        return {**summary, "test": test(model, f"test ({keeper.study_name} best)")}
    if rebuild is None or validate is None:
        raise RuntimeError(f"the best model of {keeper.study_name} (trial {best}) was not kept; delete the study "
                           f"from {storage} and rerun it")
    model = rebuild(study.trials[best])
    rebuilt = {"device": describe_device(), "val": validate(model), "trial_val": summary["best"]["val"]}
    return {**summary, "test": test(model, f"test ({keeper.study_name} best, rebuilt)"), "rebuilt": rebuilt}


def record_commits(record: dict[str, Any]) -> list[str]:
    """Every commit that ran a trial of the record's studies (see :func:`study_summary`)."""
    return sorted({c for study in record["studies"].values() for c in study.get("commits", ["unrecorded"])})


def load_record(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    """The results JSON when it exists (a resumed run), else a new one from ``header``."""
    return json.loads(path.read_text()) if path.exists() else {**header, "studies": {}}


def merge_studies(touched: set[str], derive: Callable[[dict[str, Any]], None] | None = None
                  ) -> Callable[[dict[str, Any] | None, dict[str, Any]], dict[str, Any]]:
    """A :func:`~flow.labs.common.update_json` merge for study-keyed records: the file's studies with
    this process's ``touched`` ones replaced, float accuracies per seed joined, commits and the
    ``derive``d fields (comparisons) recomputed over all of them; studies ordered by seed, then name."""
    def merge(disk: dict[str, Any] | None, mine: dict[str, Any]) -> dict[str, Any]:
        out = dict(mine)
        if disk is not None:
            out.update({key: value for key, value in disk.items() if key not in mine})
            out["studies"] = {**disk.get("studies", {}), **{name: mine["studies"][name] for name in touched
                                                             if name in mine["studies"]}}
            for key in ("float_val", "float_test"):
                if key in disk or key in mine:
                    out[key] = {**disk.get(key, {}), **mine.get(key, {})}
        out["studies"] = dict(sorted(out["studies"].items(), key=lambda item: (item[1].get("seed", 0), item[0])))
        out["commits"] = record_commits(out)
        if derive is not None:
            derive(out)
        return out

    return merge


def timed(fn, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start
