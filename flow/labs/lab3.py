"""Lab 3: mixed-precision search on bert-tiny (IMDb) with Optuna.

Task 1 (``widths``): each Linear picks fixed point with width {8, 16, 32} and frac {2, 4, 8}, or
full precision. Task 2 (``formats``): one study per number format, each Linear picking that
format's arguments; the table gives each format's average bits per weight and accuracy. Every
trial quantizes lab 1's trained bert-tiny, trains it briefly (QAT) and scores it on the
validation split; each study's best model is tested on the whole test split. Studies live in
SQLite (results/lab3/studies.db) and resume.

``python -m flow.labs.lab3 --task widths|formats|all --preset smoke|full`` (also ``flow search lab3``).
"""
from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from torch import nn

from flow.cluster import Executor, open_executor
from flow.data.loader import make_loader
from flow.formats.storage import bits_per_element
from flow.labs.common import check_preset, lab_arguments, parse_seeds, run_lab, run_metadata, update_json
from flow.labs.lab1 import Lab1
from flow.labs.search_harness import BestKeeper, load_record, merge_studies, record_commits, subset, tested_summary
from flow.nn.format_linear import FormatLinear
from flow.passes import quantize_module
from flow.passes.quantize import linear_layers
from flow.paths import results_dir
from flow.search import SAMPLERS, PrecisionSpace, StudySpec, run_study
from flow.search.plot import plot_best_so_far
from flow.train import TrainConfig, evaluate, train
from flow.train.device import describe_device

OPERANDS = ("data_in", "weight", "bias")
WIDTHS_SPACE = {"fixed": {"width": (8, 16, 32), "frac_width": (2, 4, 8)}}
#: Task 2: each format's arguments (the same for a layer's input, weight and bias), low widths included.
FORMATS_SPACE: dict[str, dict[str, tuple[Any, ...]]] = {
    "fixed": {"width": (4, 6, 8), "frac_width": (3, 4, 5, 6)},
    "minifloat": {"width": (4, 6, 8), "exponent_width": (2, 3)},  # with denormals
    "minifloat_ieee": {"width": (4, 6, 8), "exponent_width": (2, 3)},
    "log": {"width": (4, 5, 6)},
    "block_fp": {"width": (4, 6, 8), "block_size": (16, 32)},
    "block_minifloat": {"width": (4, 6, 8), "exponent_width": (2, 3), "block_size": (16, 32)},
    "block_log": {"width": (3, 4, 5), "block_size": (16, 32)},
    "binary": {"scaled": (False, True)},
    "ternary": {"threshold_factor": (0.5, 0.7), "scaled": (True,)},
}
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"trials": 3, "formats_trials": 2, "qat_samples": 32, "formats": ("fixed", "log", "ternary")},
    "full": {"trials": 20, "formats_trials": 20, "qat_samples": 1000, "formats": tuple(FORMATS_SPACE)},
}
QAT = {"lr": 1e-4, "batch_size": 32, "epochs": 1}
PER_TRIAL = ("bits_per_weight", "quantized_layers", "ptq_val")  # user attributes listed per trial in the JSON


def layer_table(choice: dict[str, Any] | None) -> dict[str, Any]:
    """A quantize_module layer table from a space's choice (None: full precision)."""
    if choice is None:
        return {"name": None}
    args = {k: v for k, v in choice.items() if k != "name"}
    return {"name": choice["name"], **{f"{op}_{k}": v for op in OPERANDS for k, v in args.items()}}


def average_weight_bits(model: nn.Module) -> float:
    """Bits per weight over every Linear of the model (float layers count 32)."""
    total = bits = 0.0
    for _, layer in linear_layers(model):
        count = layer.weight.numel()
        fmt = layer.formats.weight if isinstance(layer, FormatLinear) else None
        total += count
        bits += count * (32.0 if fmt is None else bits_per_element(fmt, layer.in_features))
    return bits / total


class Lab3:
    def __init__(self, preset: str, out: Path, lab1_dir: Path, imdb_dir: str | None, storage: str | None,
                 sampler: str, progress: bool, log=print, seed: int = 0, executor: Executor | None = None) -> None:
        self.preset, self.p, self.out, self.sampler, self.log = preset, PRESETS[preset], out, sampler, log
        self.executor = executor
        self.storage = storage or str(out / "studies.db")
        self.lab1 = Lab1(preset, lab1_dir, imdb_dir, progress, seed)  # lab 1's data and trained base model
        self.layers = tuple(path for path, _ in linear_layers(self.lab1.base))
        pad = self.lab1.data.tokenizer.pad_token_id
        self.qat_loader = make_loader(subset(self.lab1.data.train, self.p["qat_samples"]), QAT["batch_size"],
                                      shuffle=True, seed=0, pad_id=pad)

    def fit(self, space: PrecisionSpace, trial: optuna.Trial | optuna.trial.FixedTrial, seed: int) -> nn.Module:
        """The trial's model: lab 1's base quantized per the trial's choice, then QAT; what a trial
        measures, and what rebuilds a best model not kept."""
        choice = space.suggest(trial)
        model = copy.deepcopy(self.lab1.base)
        config = {"by": "name", **{layer: layer_table(c) for layer, c in choice.items()}}
        report = quantize_module(model, config)
        trial.set_user_attr("quantized_layers", len(report.changed))
        trial.set_user_attr("bits_per_weight", round(average_weight_bits(model), 4))
        trial.set_user_attr("device", describe_device())
        trial.set_user_attr("ptq_val", evaluate(model, self.lab1.val_loader, progress=False).accuracy)
        train(model, self.qat_loader, TrainConfig(lr=QAT["lr"], epochs=QAT["epochs"], seed=seed), progress=False)
        return model

    def objective(self, space: PrecisionSpace, study_name: str, seed: int) -> Callable[[optuna.Trial], float]:
        keeper = BestKeeper(self.out, study_name)

        def objective(trial: optuna.Trial) -> float:
            model = self.fit(space, trial, seed)
            value = evaluate(model, self.lab1.val_loader, progress=False).accuracy
            keeper.offer(trial.study, trial, value, model)
            return value

        return objective

    def run_one(self, record: dict[str, Any], name: str, space: PrecisionSpace, trials: int, seed: int,
                worker: int, extra: dict[str, Any]) -> None:
        spec = StudySpec(name, self.storage, self.sampler, seed, trials, worker=worker,
                         attrs={"lab": "lab3", "preset": self.preset, **extra})
        study = run_study(spec, self.objective(space, name, seed), self.log, self.executor)
        if worker:
            return
        summary = tested_summary(study, record["studies"].get(name, {}), BestKeeper(self.out, name),
                                 self.lab1.test_accuracy, self.storage, PER_TRIAL,
                                 rebuild=lambda t: self.fit(space, optuna.trial.FixedTrial(t.params), seed),
                                 validate=lambda m: self.lab1.val_accuracy(m, "val (rebuilt)"))
        summary["bits_table"] = bits_table(study)
        record["studies"][name] = {**extra, **summary}
        record["commits"] = record_commits(record)
        self.log(f"[{name}] best trial {summary['best']['number']}: val {summary['best']['val']:.4f}, test "
                 f"{summary['test']:.4f}, {summary['best']['attrs'].get('bits_per_weight')} bits per weight")

    def use_seed(self, record: dict[str, Any], seed: int) -> None:
        """Switch to lab 1's base model of ``seed`` and note its float validation and test accuracy (the
        reference each study's best model is compared with)."""
        self.lab1.use_seed(seed)
        floats, tests = record.setdefault("float_val", {}), record.setdefault("float_test", {})
        if str(seed) not in floats:
            floats[str(seed)] = evaluate(self.lab1.base, self.lab1.val_loader, progress=False).accuracy
        if str(seed) not in tests:
            tests[str(seed)] = self.lab1.test_accuracy(self.lab1.base, f"test (float base, seed {seed})")

    def header(self, task: str) -> dict[str, Any]:
        return {"task": task, "preset": self.preset, "model": self.lab1.base_source, **self.lab1.data.describe(),
                "float_val": {}, "float_test": {}, "qat": {**QAT, "samples": self.p["qat_samples"]}, "sampler": self.sampler,
                "storage": self.storage, "meta": run_metadata()}


def bits_table(study: optuna.Study, budgets: tuple[float, ...] = (2.5, 4.5, 6.5, 8.5, 16.5, 32)) -> dict[str, Any]:
    """The best validation accuracy among trials within each bits-per-weight budget."""
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    table = {}
    for budget in budgets:
        within = [t.value for t in trials if t.user_attrs.get("bits_per_weight", 99) <= budget]
        table[str(budget)] = max(within) if within else None
    return table


def widths_task(lab: Lab3, seeds: tuple[int, ...], worker: int) -> dict[str, Any]:
    path = lab.out / f"widths_{lab.preset}.json"
    record = load_record(path, {**lab.header("widths"), "space": WIDTHS_SPACE, "allow_full": True})
    space = PrecisionSpace(lab.layers, WIDTHS_SPACE, allow_full=True)
    for seed in seeds:
        lab.use_seed(record, seed)
        name = f"lab3-widths-{lab.sampler}-seed{seed}-{lab.preset}"
        lab.run_one(record, name, space, lab.p["trials"], seed, worker, {"seed": seed})
        if not worker:
            record = update_json(path, record, merge_studies({name}))
            plot_widths(record, lab.out / f"widths_{lab.preset}.png")
    return record


def plot_widths(record: dict[str, Any], path: Path) -> None:
    """Best validation accuracy so far: mean over the seeds with their min-max spread."""
    label = "fixed {8,16,32} x frac {2,4,8} or float"
    plot_best_so_far({label: [s["curve"] for s in record["studies"].values()]}, path,
                     "per-layer fixed-point precision search (bert-tiny)",
                     notes={label: _chance(list(record["studies"].values()))})


def _chance(studies: list[dict[str, Any]]) -> str:
    return (f"{sum(s.get('at_chance', 0) for s in studies)} of {sum(len(s.get('values', [])) for s in studies)} "
            f"at chance")


def plot_formats(record: dict[str, Any], path: Path) -> None:
    """One curve per format: mean over its seeds with their min-max spread."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for study in record["studies"].values():
        groups.setdefault(study["format"], []).append(study)
    plot_best_so_far({f: [s["curve"] for s in studies] for f, studies in groups.items()}, path,
                     "per-layer precision search, one study per format and seed",
                     notes={f: _chance(studies) for f, studies in groups.items()})


def formats_task(lab: Lab3, seeds: tuple[int, ...], worker: int,
                 formats: tuple[str, ...] | None = None) -> dict[str, Any]:
    path = lab.out / f"formats_{lab.preset}.json"
    record = load_record(path, {**lab.header("formats"), "space": FORMATS_SPACE, "allow_full": False})
    unknown = [f for f in formats or () if f not in FORMATS_SPACE]
    if unknown:
        raise ValueError(f"no search space for format(s) {unknown}; use one of {', '.join(FORMATS_SPACE)}")
    for seed in seeds:  # every format at a seed before the next seed: a stopped run leaves comparable sets
        lab.use_seed(record, seed)
        for fmt in formats or lab.p["formats"]:
            space = PrecisionSpace(lab.layers, {fmt: FORMATS_SPACE[fmt]}, allow_full=False)
            name = f"lab3-formats-{fmt}-{lab.sampler}-seed{seed}-{lab.preset}"
            lab.run_one(record, name, space, lab.p["formats_trials"], seed, worker, {"format": fmt, "seed": seed})
            if not worker:
                record = update_json(path, record, merge_studies({name}))
                plot_formats(record, lab.out / f"formats_{lab.preset}.png")
    return record


def run(task: str = "all", preset: str = "smoke", out: str | Path | None = None, imdb_dir: str | None = None,
        storage: str | None = None, sampler: str = "tpe", seeds: tuple[int, ...] = (0,), worker: int = 0,
        formats: tuple[str, ...] | None = None, progress: bool = True, log=print,
        cluster: str | None = None) -> dict[str, Any]:
    check_preset(preset)
    if sampler not in SAMPLERS or sampler == "grid":
        raise ValueError(f"unknown or unsuitable sampler {sampler!r} for lab 3; use random, tpe or nsga2")
    folder = Path(out) if out is not None else results_dir("lab3")
    folder.mkdir(parents=True, exist_ok=True)
    lab1_dir = results_dir("lab1") if out is None else folder / "lab1"
    with open_executor(cluster, log) as executor:
        lab = Lab3(preset, folder, lab1_dir, imdb_dir, storage, sampler, progress, log, seeds[0], executor)
        log(f"lab3 {preset}: base {lab.lab1.base_source['kind']}, {len(lab.layers)} Linear layers, QAT {QAT} on "
            f"{lab.p['qat_samples']} reviews, storage {lab.storage}")
        results: dict[str, Any] = {}
        if task in ("widths", "all"):
            results["widths"] = widths_task(lab, seeds, worker)
        if task in ("formats", "all"):
            results["formats"] = formats_task(lab, seeds, worker, formats)
    return results


def main(argv: list[str] | None = None, prog: str = "python -m flow.labs.lab3") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=["widths", "formats", "all"], default="all")
    ap.add_argument("--sampler", default="tpe", help="random, tpe or nsga2 (default tpe)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2: one study per task, format "
                                                 "and seed, each on lab 1's base model of that seed")
    ap.add_argument("--formats", default=None, help="task 2's formats, comma-separated (default: all)")
    lab_arguments(ap, "lab3", search=True)
    a = ap.parse_args(argv)
    formats = tuple(f.strip() for f in a.formats.split(",")) if a.formats else None
    return run_lab("lab3", a.threads, lambda: run(a.task, a.preset, a.out, a.imdb_dir, a.storage, a.sampler,
                                                  parse_seeds(a.seeds), a.worker, formats,
                                                  progress=not a.no_progress, cluster=a.cluster), a.device)

if __name__ == "__main__":
    raise SystemExit(main())
