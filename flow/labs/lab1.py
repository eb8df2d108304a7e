"""Lab 1: compression of bert-tiny on IMDb. Task 1 sweeps the fixed-point width of every Linear
(PTQ and QAT); task 2 prunes the best model of task 1, selected on validation (random and l1-norm,
weights, local scope). ``--seeds 0,1,2`` repeats both for each seed; figures show the mean and min-max.

`python -m flow.labs.lab1 --task quantize|prune|all --preset smoke|full` writes results JSON and a
figure per task under results/lab1/. Each point is stored as soon as it is measured, so a run that
stops continues from its finished points. Test accuracy is on the whole test split (full preset);
selection reads only the validation split.
"""
from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flow.data.loader import make_loader
from flow.data.pipeline import IMDbData, prepare_imdb
from flow.labs.common import CHANCE, check_preset, lab_arguments, parse_seeds, run_lab, run_metadata, update_json
from flow.labs.stats import spread
from flow.models.bert import build_bert
from flow.passes import make_permanent, prune_module, quantize_module
from flow.paths import current_commit, results_dir
from flow.train import TrainConfig, evaluate, train
from flow.train.checkpoint import load_checkpoint

PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"max_length": 64, "train_limit": 256, "test_limit": 128, "widths": [4, 8, 16],
              "sparsities": [0.3, 0.7], "finetune_samples": 64, "base_epochs": 1},
    "full": {"max_length": 128, "train_limit": None, "test_limit": None, "widths": [4, 6, 8, 16, 32],
             "sparsities": [0.1, 0.5, 0.9, 0.3, 0.7], "finetune_samples": 4000, "base_epochs": 2},
}
FINETUNE = {"lr": 1e-4, "batch_size": 32, "epochs": 1}  # QAT and post-pruning fine-tuning, the same everywhere
METHODS = ("random", "l1")


def frac_for(width: int) -> int:
    """The sweep's scaling rule: half the bits are fractional (the reference's 8/4 at width 8)."""
    return width // 2


def fixed_config(width: int) -> dict[str, Any]:
    """Every Linear: inputs, weights and biases in fixed<s width.width/2>; outputs stay float."""
    frac = frac_for(width)
    return {"by": "type", "linear": {"name": "fixed", "data_in_width": width, "data_in_frac_width": frac,
                                     "weight_width": width, "weight_frac_width": frac,
                                     "bias_width": width, "bias_frac_width": frac}}


DATA_SEED = 0  # the validation split and the test subset are the same for every seed


class Lab1:
    """Data, the starting model of a seed, the fine-tuning budget and the results files of one preset.
    The data split is fixed; a seed sets the base model's training and the fine-tuning subset and order."""

    def __init__(self, preset: str, out: Path, imdb_dir: str | None, progress: bool, seed: int = 0) -> None:
        self.preset, self.p, self.out, self.progress = preset, PRESETS[preset], out, progress
        self.data: IMDbData = prepare_imdb(self.p["max_length"], "auto", seed=DATA_SEED, imdb_dir=imdb_dir,
                                           train_limit=self.p["train_limit"], test_limit=self.p["test_limit"])
        pad = self.data.tokenizer.pad_token_id
        self.test_loader = make_loader(self.data.test, 256, sort_by_length=True, pad_id=pad)
        self.val_loader = make_loader(self.data.val, 256, sort_by_length=True, pad_id=pad)
        self.use_seed(seed)

    def use_seed(self, seed: int) -> None:
        """Switch to ``seed``'s base model and fine-tuning subset (training the base model if needed)."""
        pad = self.data.tokenizer.pad_token_id
        self.seed = seed
        subset = _subset(self.data.train, self.p["finetune_samples"], seed)
        self.finetune_loader = make_loader(subset, FINETUNE["batch_size"], shuffle=True, seed=seed, pad_id=pad)
        self.base, self.base_source = self._base_model()

    def tag(self) -> str:
        """File-name part of this seed (empty for seed 0, so earlier checkpoints keep their names)."""
        return f"_seed{self.seed}" if self.seed else ""

    # ---- the starting model ----
    def _base_model(self) -> tuple[nn.Module, dict[str, Any]]:
        """bert-tiny trained on this preset's data (pretrained weights fine-tuned when the hub has
        them), cached under base/checkpoints: for the full preset and seed 0 the checkpoint of
        `python -m flow.labs.baseline --preset full --max-length 128 --out results/lab1/base`."""
        model, source = build_bert("auto", seed=self.seed)
        suffix = "" if self.preset == "full" else f"_{self.preset}"
        path = self.out / "base" / "checkpoints" / f"bert_tiny_{source.kind}{self.tag()}{suffix}.pt"
        info = {**source.as_dict(), "checkpoint": str(path)}
        if path.exists():
            load_checkpoint(path, model)
            return model.eval(), {**info, "trained_here": False}
        pad = self.data.tokenizer.pad_token_id
        loader = make_loader(self.data.train, 32, shuffle=True, seed=self.seed, pad_id=pad)
        recipe = ({"lr": 5e-5, "epochs": 1, "warmup_ratio": 0.0} if source.kind == "pretrained"
                  else {"lr": 5e-4, "epochs": self.p["base_epochs"], "warmup_ratio": 0.1})
        result = train(model, loader, TrainConfig(seed=self.seed, **recipe), progress=self.progress, checkpoint=path)
        return model.eval(), {**info, "trained_here": True, "train": recipe, "train_seconds": result.seconds}

    def qat_checkpoint(self, width: int) -> Path:
        return self.out / "checkpoints" / f"qat_{width}{self.tag()}_{self.preset}.pt"

    # ---- measurements ----
    def test_accuracy(self, model: nn.Module, desc: str) -> float:
        return evaluate(model, self.test_loader, progress=self.progress, desc=desc).accuracy

    def val_accuracy(self, model: nn.Module, desc: str) -> float:
        """On the held-out validation split: what every selection reads (never the test split)."""
        return evaluate(model, self.val_loader, progress=self.progress, desc=desc).accuracy

    def finetune(self, model: nn.Module) -> float:
        """The fixed budget: FINETUNE on finetune_samples training reviews; returns seconds."""
        cfg = TrainConfig(lr=FINETUNE["lr"], epochs=FINETUNE["epochs"], seed=self.seed)
        return train(model, self.finetune_loader, cfg, progress=self.progress).seconds

    def qat(self, model: nn.Module, width: int) -> float:
        """Task 1's QAT of a model quantized at ``width``: the fine-tuning budget, then the checkpoint
        task 2 starts from; returns seconds."""
        seconds = self.finetune(model)
        self.qat_checkpoint(width).parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), self.qat_checkpoint(width))
        return seconds

    def header(self, task: str) -> dict[str, Any]:
        return {"task": task, "preset": self.preset, "model": self.base_source, **self.data.describe(),
                "finetune": {**FINETUNE, "samples": self.p["finetune_samples"]}, "meta": run_metadata(),
                "seeds": [], "data_seed": DATA_SEED}


def _subset(dataset: Any, count: int, seed: int) -> Any:
    """A seeded random subset of a tokenized dataset (count at most its size)."""
    from flow.data.loader import TokenizedDataset

    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count].tolist()
    return TokenizedDataset([dataset.input_ids[i] for i in order], [dataset.labels[i] for i in order])


def _load(path: Path) -> dict[str, Any] | None:
    import json

    return json.loads(path.read_text()) if path.exists() else None


def _store(path: Path, record: dict[str, Any], seed: int) -> dict[str, Any]:
    """Write this process's entries of ``seed`` into the results file (other seeds' entries there,
    written by other processes, stay), listing the seed and this commit; returns the merged record."""
    commit = current_commit() or "unknown"

    def merge(disk: dict[str, Any] | None, mine: dict[str, Any]) -> dict[str, Any]:
        out = dict(mine)
        disk = disk or {}
        for key in ("points", "floats"):
            if key in mine:
                ours = [entry for entry in mine[key] if entry["seed"] == seed]
                theirs = [entry for entry in disk.get(key, []) if entry["seed"] != seed]
                out[key] = sorted(theirs + ours, key=lambda entry: entry["seed"])  # stable: in-seed order kept
        out["seeds"] = sorted(set(disk.get("seeds", [])) | set(mine.get("seeds", [])) | {seed})
        out["commits"] = sorted(set(disk.get("commits", [])) | set(mine.get("commits", [])) | {commit})
        return out

    return update_json(path, record, merge)


def quantize_task(lab: Lab1, seeds: tuple[int, ...] = (0,), log=print) -> dict[str, Any]:
    """Task 1: PTQ and QAT accuracy (test, and validation for selection) for every width and seed of
    the preset; resumes from the JSON (a stored point without validation accuracy is measured again)."""
    path = lab.out / f"quantize_{lab.preset}.json"
    record = _load(path) or {**lab.header("quantize"), "points": [], "floats": []}
    for seed in seeds:
        lab.use_seed(seed)
        if not any(f["seed"] == seed for f in record["floats"]):
            record["floats"].append({"seed": seed, "test": lab.test_accuracy(lab.base, "test (float)"),
                                     "val": lab.val_accuracy(lab.base, "val (float)")})
        done = {p["width"] for p in record["points"] if p["seed"] == seed and "qat_val" in p}
        for width in lab.p["widths"]:
            if width in done:
                continue
            start = time.perf_counter()
            model = copy.deepcopy(lab.base)
            report = quantize_module(model, fixed_config(width))
            ptq = lab.test_accuracy(model, f"test (PTQ {width} bits)")
            ptq_val = lab.val_accuracy(model, f"val (PTQ {width} bits)")
            seconds = lab.qat(model, width)
            qat = lab.test_accuracy(model, f"test (QAT {width} bits)")
            qat_val = lab.val_accuracy(model, f"val (QAT {width} bits)")
            record["points"] = [p for p in record["points"] if (p["seed"], p["width"]) != (seed, width)]
            record["points"].append({"seed": seed, "width": width, "frac": frac_for(width), "ptq": ptq, "qat": qat,
                                     "ptq_val": ptq_val, "qat_val": qat_val, "quantized_layers": len(report.changed),
                                     "qat_seconds": round(seconds, 1),
                                     "seconds": round(time.perf_counter() - start, 1), "commit": current_commit()})
            record["points"].sort(key=lambda point: (point["seed"], point["width"]))
            record = _store(path, record, seed)
            log(f"seed {seed} width {width:>2} (frac {frac_for(width)}): PTQ {ptq:.4f}, QAT {qat:.4f} "
                f"(val {qat_val:.4f})  [{time.perf_counter() - start:.0f} s]")
        record = _store(path, record, seed)
    plot_quantize(record, lab.out / f"quantize_{lab.preset}.png")
    return record


def best_width(record: dict[str, Any]) -> int:
    """The width of task 1's best model: highest QAT validation accuracy (mean over the seeds), the
    narrowest on a tie. Test accuracy never selects."""
    by_width: dict[int, list[float]] = {}
    for point in record["points"]:
        if "qat_val" not in point:
            raise ValueError(f"task 1's width {point['width']} (seed {point['seed']}) has no validation accuracy; "
                             f"rerun task 1 (python -m flow.labs.lab1 --task quantize) to measure it")
        by_width.setdefault(point["width"], []).append(point["qat_val"])
    return max(by_width, key=lambda w: (sum(by_width[w]) / len(by_width[w]), -w))


def pruned_start(start: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per seed, the QAT validation and test accuracy of the model task 2 actually pruned: the
    recreated model where task 1's checkpoint was missing, else task 1's."""
    again = start.get("recreated", {})
    return {seed: again.get(seed, {"qat_val": start["qat_val"][seed], "qat": qat}) for seed, qat in
            start["qat"].items()}


def _recreate_qat(lab: Lab1, width: int, record: dict[str, Any], log) -> dict[str, Any]:
    """Task 1's QAT model of this seed at ``width`` when its checkpoint is not on this machine (task 1
    ran elsewhere): the same recipe again, its validation and test accuracy recorded beside task 1's
    figures so a reader sees how close the retrained starting model is."""
    start = time.perf_counter()
    model = copy.deepcopy(lab.base)
    quantize_module(model, fixed_config(width))
    lab.qat(model, width)
    again = {"qat_val": lab.val_accuracy(model, f"val (QAT {width} bits, recreated)"),
             "qat": lab.test_accuracy(model, f"test (QAT {width} bits, recreated)"),
             "base_val": lab.val_accuracy(lab.base, "val (float base, recreated)"),
             "seconds": round(time.perf_counter() - start, 1), "commit": current_commit()}
    record["start"].setdefault("recreated", {})[str(lab.seed)] = again
    log(f"seed {lab.seed}: task 1's {width}-bit QAT checkpoint was missing; recreated: val {again['qat_val']:.4f}, "
        f"test {again['qat']:.4f} (task 1: val {record['start']['qat_val'].get(str(lab.seed), float('nan')):.4f})")
    return record


def prune_task(lab: Lab1, quantized: dict[str, Any], seeds: tuple[int, ...] = (0,), log=print) -> dict[str, Any]:
    """Task 2: prune task 1's best model (selected on validation) at every sparsity with each method
    and seed, fine-tune, then measure validation and test accuracy."""
    path = lab.out / f"prune_{lab.preset}.json"
    record = _load(path)
    if record is None:
        width = best_width(quantized)
        record = {**lab.header("prune"), "start": {
            "width": width, "selected_by": "validation", "qat_val": {str(p["seed"]): p["qat_val"] for p in
                                                                     quantized["points"] if p["width"] == width},
            "qat": {str(p["seed"]): p["qat"] for p in quantized["points"] if p["width"] == width}},
            "scope": "local", "activations": False, "points": []}
    if record["start"].get("selected_by") != "validation":
        raise ValueError(f"{path} starts from a width selected by {record['start'].get('selected_by')}, not by "
                         f"validation; move it aside and rerun task 2 (after task 1 has validation accuracies)")
    width = record["start"]["width"]
    for seed in seeds:
        lab.use_seed(seed)
        done = {(p["method"], p["sparsity"]) for p in record["points"] if p["seed"] == seed}
        for sparsity in lab.p["sparsities"]:  # both methods at each sparsity: a run that stops leaves comparable pairs
            for method in METHODS:
                if (method, sparsity) in done:
                    continue
                start = time.perf_counter()
                model = copy.deepcopy(lab.base)
                quantize_module(model, fixed_config(width))
                if not lab.qat_checkpoint(width).is_file():  # its time is counted in this point's seconds
                    record = _store(path, _recreate_qat(lab, width, record, log), seed)
                model.load_state_dict(torch.load(lab.qat_checkpoint(width), weights_only=True, map_location="cpu"))
                report = prune_module(model, sparsity, method=method, scope="local", seed=seed)
                pruned = lab.val_accuracy(model, f"val ({method} {sparsity:.1f})")
                lab.finetune(model)
                make_permanent(model)
                tuned_val = lab.val_accuracy(model, f"val ({method} {sparsity:.1f}, fine-tuned)")
                tuned = lab.test_accuracy(model, f"test ({method} {sparsity:.1f}, fine-tuned)")
                record["points"].append({"seed": seed, "method": method, "sparsity": sparsity,
                                         "reached": report.overall, "pruned_val": pruned, "finetuned_val": tuned_val,
                                         "finetuned": tuned, "seconds": round(time.perf_counter() - start, 1),
                                         "commit": current_commit()})
                record = _store(path, record, seed)
                log(f"seed {seed} {method:>6} sparsity {sparsity:.1f} (reached {report.overall:.3f}): pruned "
                    f"{pruned:.4f} (val), fine-tuned {tuned:.4f} (test)  [{time.perf_counter() - start:.0f} s]")
        record = _store(path, record, seed)
    plot_prune(record, lab.out / f"prune_{lab.preset}.png")
    return record


def _by(points: list[dict[str, Any]], key: str, value_key: str) -> tuple[list[Any], list[dict[str, Any]]]:
    """Points grouped by ``key``: the sorted keys and, per key, the spread over seeds of ``value_key``."""
    keys = sorted({p[key] for p in points})
    return keys, [spread([p[value_key] for p in points if p[key] == k]) for k in keys]


def _errorbar(ax: Any, x: list[Any], stats: list[dict[str, Any]], fmt: str, label: str, **kw: Any) -> None:
    """Mean over seeds with min-max error bars (no bars for one seed)."""
    mean = [s["mean"] for s in stats]
    err = [[s["mean"] - s["min"] for s in stats], [s["max"] - s["mean"] for s in stats]]
    seeds = max(s["n"] for s in stats)
    ax.errorbar(x, mean, yerr=err if seeds > 1 else None, fmt=fmt, capsize=3,
                label=f"{label}, mean of {seeds} seed{'s' if seeds > 1 else ''}" + (" (min-max)" if seeds > 1 else ""),
                **kw)


def plot_quantize(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = record["points"]
    fig, ax = plt.subplots(figsize=(6, 4))
    widths, ptq = _by(points, "width", "ptq")
    _errorbar(ax, widths, ptq, "o-", "PTQ")
    _errorbar(ax, widths, _by(points, "width", "qat")[1], "s-",
              f"QAT ({record['finetune']['samples']} reviews, 1 pass)")
    floats = spread([f["test"] for f in record["floats"]])
    ax.axhline(floats["mean"], color="gray", linestyle="--", label="float")
    ax.axhline(CHANCE, color="red", linestyle=":", alpha=0.5, label=f"chance (<= {CHANCE})")
    ax.set(xlabel="fixed-point width of every Linear (frac = width/2)", ylabel="test accuracy",
           title=f"bert-tiny on IMDb ({record['sizes']['test']} test reviews)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_prune(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for method, color in zip(METHODS, ("tab:blue", "tab:green"), strict=True):
        points = [p for p in record["points"] if p["method"] == method]
        sparsities, tuned = _by(points, "sparsity", "finetuned")
        _errorbar(ax, sparsities, tuned, "o-", f"{method}, fine-tuned: test split", color=color)
        _errorbar(ax, sparsities, _by(points, "sparsity", "pruned_val")[1], "^:",
                  f"{method}, before fine-tuning: validation split", alpha=0.6, color=color)
    start = spread([s["qat"] for s in pruned_start(record["start"]).values()])
    ax.axhline(start["mean"], color="gray", linestyle="--",
               label=f"unpruned {record['start']['width']}-bit QAT (the models pruned): test split")
    ax.axhline(CHANCE, color="red", linestyle=":", alpha=0.5, label=f"chance (<= {CHANCE})")
    ax.set(xlabel="weight sparsity (local, every Linear)", ylabel="accuracy (split named in the legend)",
           title=f"pruning the {record['start']['width']}-bit model ({record['sizes']['test']} test, "
                 f"{record['sizes']['val']} validation reviews)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(task: str = "all", preset: str = "smoke", out: str | Path | None = None, imdb_dir: str | None = None,
        progress: bool = True, log=print, seeds: tuple[int, ...] = (0,)) -> dict[str, Any]:
    check_preset(preset)
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative integers, got {list(seeds)}; e.g. --seeds 0,1,2")
    folder = Path(out) if out is not None else results_dir("lab1")
    folder.mkdir(parents=True, exist_ok=True)
    lab = Lab1(preset, folder, imdb_dir, progress, seeds[0])
    log(f"model: {lab.base_source['kind']} ({lab.base_source['name']}); test reviews {len(lab.data.test)}; "
        f"fine-tuning budget {FINETUNE} on {lab.p['finetune_samples']} reviews")
    results: dict[str, Any] = {}
    if task in ("quantize", "all", "prune"):
        results["quantize"] = quantize_task(lab, seeds, log)
    if task in ("prune", "all"):
        results["prune"] = prune_task(lab, results["quantize"], seeds, log)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flow.labs.lab1", description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=["quantize", "prune", "all"], default="all")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2 (each stored and resumed)")
    lab_arguments(ap, "lab1")
    a = ap.parse_args(argv)
    return run_lab("lab1", a.threads, lambda: run(a.task, a.preset, a.out, a.imdb_dir, progress=not a.no_progress,
                                                  seeds=parse_seeds(a.seeds)), a.device)

if __name__ == "__main__":
    raise SystemExit(main())
