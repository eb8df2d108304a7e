"""Lab 2: BERT architecture search with Optuna on IMDb.

Task 1 (``samplers``) compares the random, grid and TPE samplers (best validation accuracy so far
against trials, several seeds each). Task 2 (``compress``) searches with compression inside each
trial: train, quantize (fixed 8/4) and prune (l1, 0.5), optionally train again, and score after
compression. Studies live in SQLite (results/lab2/studies.db), so a killed run resumes; every
study's best model is tested on the whole test split.

``python -m flow.labs.lab2 --task samplers|compress|all --preset smoke|full`` (also ``flow search lab2``).
"""
from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from torch import nn

from flow.cluster import Executor, open_executor
from flow.labs.common import CHANCE, check_preset, lab_arguments, run_lab, run_metadata, update_json
from flow.labs.lab1 import fixed_config
from flow.labs.search_harness import (
    BestKeeper,
    SearchData,
    TrialBudget,
    load_record,
    merge_studies,
    record_commits,
    tested_summary,
)
from flow.models.bert import build_bert, parameter_count
from flow.passes import make_permanent, prune_module, quantize_module
from flow.paths import results_dir
from flow.search import SAMPLERS, ArchitectureChoice, ArchitectureSpace, StudySpec, open_storage, run_study
from flow.search.plot import curve_stats, plot_best_so_far
from flow.search.spaces import square_linears
from flow.train.device import describe_device

SAMPLER_ORDER = ("random", "grid", "tpe")
VARIANTS = ("no-retrain", "retrain")  # compression-aware, without and with training after compression
COMPRESSION = {"width": 8, "sparsity": 0.5, "method": "l1", "scope": "local"}
PER_TRIAL = {"samplers": (), "compress": ("val_before_compression",)}  # user attributes listed per trial in the JSON

PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"budget": TrialBudget(max_length=32, train_samples=64, val_samples=32, batch_size=16, test_limit=64),
              "space": ArchitectureSpace(layers=(1, 2), heads=(2, 4), hidden=(32, 64), intermediate=(64, 128)),
              "trials": 3, "seeds": (0,), "post_train_samples": 32, "tag": "smoke"},
    # The reference space without depth 8: even at 32 tokens the 8-layer, 512-wide, 2048 model trains
    # 4,000 reviews in about 5 minutes on 2 cores, over the 3-minute ceiling. The budget is the pilot's
    # `steps500` (results/lab2/pilot.json: 500 steps, where 250 left about half the trials at chance),
    # scored on the whole validation split; tag full2 keeps its studies apart from the stored 250-step run.
    "full": {"budget": TrialBudget(max_length=32, train_samples=8000, val_samples=2500, batch_size=16),
             "space": ArchitectureSpace(layers=(2, 4)), "trials": 20, "seeds": (0, 1, 2),
             "post_train_samples": 1000, "tag": "full2"},
}


# ---- building and checking a proposed architecture ----
def build_architecture(choice: ArchitectureChoice, seed: int) -> nn.Module:
    """BertForSequenceClassification of the choice's shape, its chosen square Linears as Identity."""
    model, _ = build_bert(False, seed=seed, **choice.config())
    for path in choice.identity:
        model.set_submodule(path, nn.Identity())
    built = built_shape(model)
    expected = {**choice.config(), "identity": len(choice.identity)}
    if any(built[key] != value for key, value in expected.items()):
        raise RuntimeError(f"the built model {built} is not the proposed architecture {expected}")
    return model


def built_shape(model: nn.Module) -> dict[str, int]:
    """The shape read back from the built modules (not from the config)."""
    layers = model.bert.encoder.layer
    hidden = model.bert.embeddings.word_embeddings.embedding_dim
    intermediate = layers[0].intermediate.dense
    paths = square_linears(len(layers), hidden, getattr(intermediate, "out_features", hidden))
    return {"num_hidden_layers": len(layers), "num_attention_heads": layers[0].attention.self.num_attention_heads,
            "hidden_size": hidden, "intermediate_size": getattr(intermediate, "out_features", hidden),
            "identity": sum(isinstance(model.get_submodule(p), nn.Identity) for p in paths),
            "parameters": parameter_count(model)}


def compress(model: nn.Module, seed: int) -> None:
    """Fixed 8/4 on every Linear's input, weight and bias, then l1 pruning at 0.5 (local, weights)."""
    quantize_module(model, fixed_config(COMPRESSION["width"]))
    prune_module(model, COMPRESSION["sparsity"], method=COMPRESSION["method"], scope=COMPRESSION["scope"], seed=seed)


class Lab2:
    def __init__(self, preset: str, out: Path, imdb_dir: str | None, storage: str | None, log=print,
                 progress: bool = True, executor: Executor | None = None) -> None:
        self.preset, self.p, self.out, self.log, self.executor = preset, PRESETS[preset], out, log, executor
        self.tag = self.p["tag"]  # names the preset's studies and files; a new budget gets a new tag
        self.storage = storage or str(out / "studies.db")
        self.data = SearchData(self.p["budget"], imdb_dir, progress)

    def fit(self, trial: optuna.Trial | optuna.trial.FixedTrial, seed: int, variant: str | None) -> nn.Module:
        """The trial's model: built from its architecture, trained, and (task 2) compressed and
        optionally retrained; what a trial measures, and what rebuilds a best model not kept."""
        space: ArchitectureSpace = self.p["space"]
        choice = space.suggest(trial)
        model = build_architecture(choice, seed)
        trial.set_user_attr("built", built_shape(model))
        trial.set_user_attr("device", describe_device())
        self.data.train(model, seed)
        if variant is not None:
            trial.set_user_attr("val_before_compression", self.data.val_accuracy(model))
            compress(model, seed)
            if variant == "retrain":
                self.data.train(model, seed, samples=self.p["post_train_samples"], lr=1e-4)
            make_permanent(model)
        return model

    def objective(self, study_name: str, seed: int, variant: str | None) -> Callable[[optuna.Trial], float]:
        keeper = BestKeeper(self.out, study_name)

        def objective(trial: optuna.Trial) -> float:
            model = self.fit(trial, seed, variant)
            value = self.data.val_accuracy(model)
            keeper.offer(trial.study, trial, value, model)
            return value

        return objective

    def study(self, name: str, sampler: str, seed: int, variant: str | None, worker: int,
              paired_with: str | None = None) -> optuna.Study:
        """Run one study; ``paired_with`` names a study whose architectures a new study runs first,
        in its order, so the two compare on the same models by construction."""
        space: ArchitectureSpace = self.p["space"]
        enqueue = architectures(self.storage, paired_with) if paired_with else []
        spec = StudySpec(name, self.storage, sampler, seed, self.p["trials"], grid=space.grid(), worker=worker,
                         attrs={"lab": "lab2", "variant": variant or "none", "preset": self.preset,
                                **({"paired_with": paired_with} if enqueue else {})}, enqueue=enqueue)
        return run_study(spec, self.objective(name, seed, variant), self.log, self.executor)

    def finish(self, record: dict[str, Any], name: str, study: optuna.Study, extra: dict[str, Any]) -> None:
        """Summary and test accuracy of the study's best model into the record (kept when present)."""
        seed, variant = extra["seed"], extra.get("variant")
        summary = tested_summary(study, record["studies"].get(name, {}), BestKeeper(self.out, name),
                                 self.data.test_accuracy, self.storage, PER_TRIAL[record["task"]],
                                 rebuild=lambda t: self.fit(optuna.trial.FixedTrial(t.params), seed, variant),
                                 validate=self.data.val_accuracy)
        record["studies"][name] = {**extra, **summary}
        record["commits"] = record_commits(record)
        self.log(f"[{name}] best trial {summary['best']['number']}: val {summary['best']['val']:.4f}, "
                 f"test {summary['test']:.4f}")

    def header(self, task: str) -> dict[str, Any]:
        space: ArchitectureSpace = self.p["space"]
        return {"task": task, "preset": self.preset, "tag": self.tag, "model": "BERT built from config, trained from scratch",
                **self.data.describe(), "space": {"layers": space.layers, "heads": space.heads, "hidden": space.hidden,
                                                  "intermediate": space.intermediate, "grid_points": space.size()},
                "trials": self.p["trials"], "seeds": list(self.p["seeds"]), "storage": self.storage,
                "meta": run_metadata()}


def architectures(storage: str, study_name: str) -> list[dict[str, Any]]:
    """The parameters of ``study_name``'s complete trials in trial order ([] when it does not exist)."""
    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    except KeyError:
        return []
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return [t.params for t in sorted(trials, key=lambda t: t.number)]


def sampler_task(lab: Lab2, samplers: tuple[str, ...], seeds: tuple[int, ...], worker: int = 0) -> dict[str, Any]:
    path = lab.out / f"samplers_{lab.tag}.json"
    record = load_record(path, lab.header("samplers"))
    for seed in seeds:  # every sampler at a seed before the next seed: a stopped run leaves comparable sets
        for sampler in samplers:
            name = f"lab2-samplers-{sampler}-seed{seed}-{lab.tag}"
            study = lab.study(name, sampler, seed, None, worker)
            if worker:
                continue
            lab.finish(record, name, study, {"sampler": sampler, "seed": seed})
            record = update_json(path, record, merge_studies({name}, derive_samplers))
            plot_samplers(record, lab.out / f"samplers_{lab.tag}.png")
    return record


def derive_samplers(record: dict[str, Any]) -> None:
    record["comparison"] = compare(record, "sampler", SAMPLER_ORDER)


def derive_compress(record: dict[str, Any]) -> None:
    record["comparison"] = compare(record, "variant", VARIANTS)
    record["compression_cost"] = {v: compression_cost(record, v) for v in VARIANTS}


def best_sampler(samplers_record: dict[str, Any] | None) -> str:
    """Task 1's winner at its last trial (mean over seeds), TPE when task 1 has not run."""
    if not samplers_record or not samplers_record.get("comparison"):
        return "tpe"
    final = {s: c["final"]["mean"] for s, c in samplers_record["comparison"].items()}
    return max(final, key=final.get)


def compress_task(lab: Lab2, seeds: tuple[int, ...], sampler: str | None, worker: int = 0,
                  variants: tuple[str, ...] = VARIANTS) -> dict[str, Any]:
    path = lab.out / f"compress_{lab.tag}.json"
    record = load_record(path, {**lab.header("compress"), "compression": COMPRESSION,
                                "post_train": {"samples": lab.p["post_train_samples"], "lr": 1e-4}})
    samplers_path = lab.out / f"samplers_{lab.tag}.json"
    samplers_record = load_record(samplers_path, {}) if samplers_path.exists() else None
    sampler = sampler or record.get("sampler") or best_sampler(samplers_record)
    record["sampler"] = sampler
    for seed in seeds:
        for variant in variants:
            name = f"lab2-compress-{variant}-{sampler}-seed{seed}-{lab.tag}"
            study = lab.study(name, sampler, seed, variant, worker,
                              paired_with=f"lab2-samplers-{sampler}-seed{seed}-{lab.tag}")
            if worker:
                continue
            lab.finish(record, name, study, {"variant": variant, "sampler": sampler, "seed": seed})
            record = update_json(path, record, merge_studies({name}, derive_compress))
            plot_compress(record, samplers_record, lab.out / f"compress_{lab.tag}.png")
    return record


def compare(record: dict[str, Any], key: str, order: tuple[str, ...]) -> dict[str, Any]:
    """Per group: mean, min and max of the best-so-far at trials 10 and 20 and at the end, and test accuracy."""
    out: dict[str, Any] = {}
    for group in order:
        studies = [s for s in record["studies"].values() if s.get(key) == group]
        if not studies:
            continue
        mean, low, high = curve_stats([s["curve"] for s in studies])
        at = {f"trial_{n}": {"mean": mean[n - 1], "min": low[n - 1], "max": high[n - 1]}
              for n in (10, 20) if len(mean) >= n}
        tests = [s["test"] for s in studies]
        out[group] = {**at, "final": {"mean": mean[-1], "min": low[-1], "max": high[-1]}, "seeds": len(studies),
                      "test_mean": sum(tests) / len(tests), "tests": tests}
    return out


def compression_cost(record: dict[str, Any], variant: str) -> dict[str, Any]:
    """Per trial, validation before compression minus after, split by whether the model had trained
    (above CHANCE before compression): a model already at chance has nothing to lose."""
    pairs = [(before, after) for s in record["studies"].values() if s.get("variant") == variant
             for before, after in zip(s["val_before_compression"], s["values"], strict=True)]
    trained = [before - after for before, after in pairs if before > CHANCE]
    return {"trials": len(pairs), "at_chance_before": len(pairs) - len(trained), "trained": len(trained),
            "trained_median_loss": statistics.median(trained) if trained else None,
            "trained_mean_loss": statistics.fmean(trained) if trained else None,
            "trained_to_chance": sum(1 for b, a in pairs if b > CHANCE and a <= CHANCE),
            "trained_losing_over_0_05": sum(1 for loss in trained if loss > 0.05),
            "trained_worst_loss": max(trained) if trained else None}


def _curves(record: dict[str, Any] | None, key: str, group: str) -> list[list[float]]:
    if not record:
        return []
    return [s["curve"] for s in record["studies"].values() if s.get(key) == group]


def chance_note(record: dict[str, Any] | None, key: str, group: str) -> str:
    """``k of n trials at chance`` over the group's studies (the figures' legends report it)."""
    studies = [s for s in (record or {}).get("studies", {}).values() if s.get(key) == group and "values" in s]
    return f"{sum(s['at_chance'] for s in studies)} of {sum(len(s['values']) for s in studies)} trials at chance"


def plot_samplers(record: dict[str, Any], path: Path) -> None:
    b = record["budget"]
    plot_best_so_far({s: _curves(record, "sampler", s) for s in SAMPLER_ORDER}, path,
                     f"BERT architecture search: {b['train_samples']} reviews x {b['max_length']} tokens per trial",
                     notes={s: chance_note(record, "sampler", s) for s in SAMPLER_ORDER})


def plot_compress(record: dict[str, Any], samplers_record: dict[str, Any] | None, path: Path) -> None:
    sampler = record["sampler"]
    labels = {f"no compression ({sampler}, task 1)": (samplers_record, "sampler", sampler),
              "compression-aware, no retraining": (record, "variant", "no-retrain"),
              "compression-aware, retrained": (record, "variant", "retrain")}
    plot_best_so_far({label: _curves(*how) for label, how in labels.items()}, path,
                     f"compression-aware search ({sampler}; fixed 8/4 + l1 0.5)",
                     notes={label: chance_note(*how) for label, how in labels.items()})


def run(task: str = "all", preset: str = "smoke", out: str | Path | None = None, imdb_dir: str | None = None,
        storage: str | None = None, samplers: tuple[str, ...] = SAMPLER_ORDER, seeds: tuple[int, ...] | None = None,
        sampler: str | None = None, worker: int = 0, progress: bool = True, log=print,
        variants: tuple[str, ...] = VARIANTS, cluster: str | None = None) -> dict[str, Any]:
    check_preset(preset)
    unknown = [s for s in (*samplers, *([sampler] if sampler else [])) if s not in SAMPLERS]
    if unknown:
        raise ValueError(f"unknown sampler(s) {unknown}; use {', '.join(SAMPLERS)}")
    if not variants or any(v not in VARIANTS for v in variants):
        raise ValueError(f"unknown variant(s) in {list(variants)}; use {', '.join(VARIANTS)}")
    folder = Path(out) if out is not None else results_dir("lab2")
    folder.mkdir(parents=True, exist_ok=True)
    with open_executor(cluster, log) as executor:
        lab = Lab2(preset, folder, imdb_dir, storage, log, progress, executor)
        seeds = tuple(seeds) if seeds is not None else tuple(lab.p["seeds"])
        log(f"lab2 {preset}: {lab.p['trials']} trials per study, seeds {list(seeds)}, budget "
            f"{lab.p['budget'].as_dict()}, storage {lab.storage}")
        results: dict[str, Any] = {}
        if task in ("samplers", "all"):
            results["samplers"] = sampler_task(lab, samplers, seeds, worker)
        if task in ("compress", "all"):
            results["compress"] = compress_task(lab, seeds, sampler, worker, variants)
    return results


def main(argv: list[str] | None = None, prog: str = "python -m flow.labs.lab2") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=["samplers", "compress", "all"], default="all")
    ap.add_argument("--samplers", default=",".join(SAMPLER_ORDER), help="task 1's samplers, comma-separated")
    ap.add_argument("--sampler", default=None, help="task 2's sampler (default: task 1's winner, else tpe)")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default: the preset's)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="task 2's variants, comma-separated")
    lab_arguments(ap, "lab2", search=True)
    a = ap.parse_args(argv)

    def work() -> None:
        samplers = tuple(s.strip() for s in a.samplers.split(",") if s.strip())
        seeds = tuple(int(s) for s in a.seeds.split(",")) if a.seeds else None
        variants = tuple(v.strip() for v in a.variants.split(",") if v.strip())
        run(a.task, a.preset, a.out, a.imdb_dir, a.storage, samplers, seeds, a.sampler, a.worker,
            progress=not a.no_progress, variants=variants, cluster=a.cluster)

    return run_lab("lab2", a.threads, work, a.device)

if __name__ == "__main__":
    raise SystemExit(main())
