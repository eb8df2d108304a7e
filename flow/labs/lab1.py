"""Lab 1: compression of bert-tiny on IMDb. Task 1 sweeps the fixed-point width of every Linear
(PTQ and QAT); task 2 prunes the best model of task 1 (random and l1-norm, weights, local scope).

`python -m flow.labs.lab1 --task quantize|prune|all --preset smoke|full` writes results JSON and a
figure per task under results/lab1/. Each point is stored as soon as it is measured, so a run that
stops continues from its finished points. Every accuracy is on the whole test split (full preset).
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
from flow.labs.common import check_preset, lab_arguments, run_lab, run_metadata, write_json
from flow.models.bert import build_bert
from flow.passes import make_permanent, prune_module, quantize_module
from flow.paths import results_dir
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


class Lab1:
    """Data, the starting model, the fine-tuning budget and the results files of one preset."""

    def __init__(self, preset: str, out: Path, imdb_dir: str | None, progress: bool, seed: int = 0) -> None:
        self.preset, self.p, self.out, self.progress, self.seed = preset, PRESETS[preset], out, progress, seed
        self.data: IMDbData = prepare_imdb(self.p["max_length"], "auto", seed=seed, imdb_dir=imdb_dir,
                                           train_limit=self.p["train_limit"], test_limit=self.p["test_limit"])
        pad = self.data.tokenizer.pad_token_id
        self.test_loader = make_loader(self.data.test, 256, sort_by_length=True, pad_id=pad)
        self.val_loader = make_loader(self.data.val, 256, sort_by_length=True, pad_id=pad)
        subset = _subset(self.data.train, self.p["finetune_samples"], seed)
        self.finetune_loader = make_loader(subset, FINETUNE["batch_size"], shuffle=True, seed=seed, pad_id=pad)
        self.base, self.base_source = self._base_model()

    # ---- the starting model ----
    def _base_model(self) -> tuple[nn.Module, dict[str, Any]]:
        """bert-tiny trained on this preset's data (pretrained weights fine-tuned when the hub has
        them), cached under base/checkpoints: for the full preset the checkpoint of
        `python -m flow.labs.baseline --preset full --max-length 128 --out results/lab1/base`."""
        model, source = build_bert("auto", seed=self.seed)
        suffix = "" if self.preset == "full" else f"_{self.preset}"
        path = self.out / "base" / "checkpoints" / f"bert_tiny_{source.kind}{suffix}.pt"
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

    # ---- measurements ----
    def test_accuracy(self, model: nn.Module, desc: str) -> float:
        return evaluate(model, self.test_loader, progress=self.progress, desc=desc).accuracy

    def val_accuracy(self, model: nn.Module, desc: str) -> float:
        """On the held-out validation split: for intermediate points that no figure's claim rests on."""
        return evaluate(model, self.val_loader, progress=self.progress, desc=desc).accuracy

    def finetune(self, model: nn.Module) -> float:
        """The fixed budget: FINETUNE on finetune_samples training reviews; returns seconds."""
        cfg = TrainConfig(lr=FINETUNE["lr"], epochs=FINETUNE["epochs"], seed=self.seed)
        return train(model, self.finetune_loader, cfg, progress=self.progress).seconds

    def header(self, task: str) -> dict[str, Any]:
        return {"task": task, "preset": self.preset, "model": self.base_source, **self.data.describe(),
                "finetune": {**FINETUNE, "samples": self.p["finetune_samples"]}, "meta": run_metadata()}


def _subset(dataset: Any, count: int, seed: int) -> Any:
    """A seeded random subset of a tokenized dataset (count at most its size)."""
    from flow.data.loader import TokenizedDataset

    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count].tolist()
    return TokenizedDataset([dataset.input_ids[i] for i in order], [dataset.labels[i] for i in order])


def _load(path: Path) -> dict[str, Any] | None:
    import json

    return json.loads(path.read_text()) if path.exists() else None


def quantize_task(lab: Lab1, log=print) -> dict[str, Any]:
    """Task 1: PTQ and QAT test accuracy for every width of the preset (resumes from the JSON)."""
    path = lab.out / f"quantize_{lab.preset}.json"
    record = _load(path) or {**lab.header("quantize"), "points": []}
    if "float_accuracy" not in record:
        record["float_accuracy"] = lab.test_accuracy(lab.base, "test (float)")
    done = {point["width"] for point in record["points"]}
    for width in lab.p["widths"]:
        if width in done:
            continue
        start = time.perf_counter()
        model = copy.deepcopy(lab.base)
        report = quantize_module(model, fixed_config(width))
        ptq = lab.test_accuracy(model, f"test (PTQ {width} bits)")
        seconds = lab.finetune(model)
        qat = lab.test_accuracy(model, f"test (QAT {width} bits)")
        (lab.out / "checkpoints").mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), lab.out / "checkpoints" / f"qat_{width}_{lab.preset}.pt")
        record["points"].append({"width": width, "frac": frac_for(width), "ptq": ptq, "qat": qat,
                                 "quantized_layers": len(report.changed), "qat_seconds": round(seconds, 1),
                                 "seconds": round(time.perf_counter() - start, 1)})
        record["points"].sort(key=lambda point: point["width"])
        write_json(path, record)
        log(f"width {width:>2} (frac {frac_for(width)}): PTQ {ptq:.4f}, QAT {qat:.4f}  "
            f"[{time.perf_counter() - start:.0f} s]")
    write_json(path, record)
    plot_quantize(record, lab.out / f"quantize_{lab.preset}.png")
    return record


def best_width(record: dict[str, Any]) -> int:
    """The width of task 1's best model: highest QAT accuracy, the narrowest on a tie."""
    return max(record["points"], key=lambda point: (point["qat"], -point["width"]))["width"]


def prune_task(lab: Lab1, quantized: dict[str, Any], log=print) -> dict[str, Any]:
    """Task 2: prune task 1's best model at every sparsity with each method, fine-tune, test."""
    path = lab.out / f"prune_{lab.preset}.json"
    width = best_width(quantized)
    record = _load(path) or {**lab.header("prune"), "start": {"width": width, "qat": next(
        p["qat"] for p in quantized["points"] if p["width"] == width)}, "scope": "local", "activations": False,
        "points": []}
    done = {(point["method"], point["sparsity"]) for point in record["points"]}
    for sparsity in lab.p["sparsities"]:  # both methods at each sparsity: a run that stops leaves comparable pairs
        for method in METHODS:
            if (method, sparsity) in done:
                continue
            start = time.perf_counter()
            model = copy.deepcopy(lab.base)
            quantize_module(model, fixed_config(width))
            model.load_state_dict(torch.load(lab.out / "checkpoints" / f"qat_{width}_{lab.preset}.pt",
                                             weights_only=True))
            report = prune_module(model, sparsity, method=method, scope="local", seed=lab.seed)
            pruned = lab.val_accuracy(model, f"val ({method} {sparsity:.1f})")
            lab.finetune(model)
            make_permanent(model)
            tuned = lab.test_accuracy(model, f"test ({method} {sparsity:.1f}, fine-tuned)")
            record["points"].append({"method": method, "sparsity": sparsity, "reached": report.overall,
                                     "pruned_val": pruned, "finetuned": tuned,
                                     "seconds": round(time.perf_counter() - start, 1)})
            write_json(path, record)
            log(f"{method:>6} sparsity {sparsity:.1f} (reached {report.overall:.3f}): pruned {pruned:.4f} (val), "
                f"fine-tuned {tuned:.4f}  [{time.perf_counter() - start:.0f} s]")
    write_json(path, record)
    plot_prune(record, lab.out / f"prune_{lab.preset}.png")
    return record


def plot_quantize(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = record["points"]
    widths = [p["width"] for p in points]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(widths, [p["ptq"] for p in points], "o-", label="PTQ")
    ax.plot(widths, [p["qat"] for p in points], "s-", label=f"QAT ({record['finetune']['samples']} reviews, 1 pass)")
    ax.axhline(record["float_accuracy"], color="gray", linestyle="--", label="float")
    ax.set(xlabel="fixed-point width of every Linear (frac = width/2)", ylabel="test accuracy",
           title=f"bert-tiny on IMDb ({record['sizes']['test']} test reviews)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_prune(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in METHODS:
        points = sorted((p for p in record["points"] if p["method"] == method), key=lambda p: p["sparsity"])
        ax.plot([p["sparsity"] for p in points], [p["finetuned"] for p in points], "o-",
                label=f"{method}, fine-tuned")
        ax.plot([p["sparsity"] for p in points], [p["pruned_val"] for p in points], ":", alpha=0.6,
                label=f"{method}, before fine-tuning (validation split)")
    ax.axhline(record["start"]["qat"], color="gray", linestyle="--",
               label=f"unpruned ({record['start']['width']}-bit QAT)")
    ax.set(xlabel="weight sparsity (local, every Linear)", ylabel="test accuracy",
           title=f"pruning the {record['start']['width']}-bit model ({record['sizes']['test']} test reviews)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(task: str = "all", preset: str = "smoke", out: str | Path | None = None, imdb_dir: str | None = None,
        progress: bool = True, log=print) -> dict[str, Any]:
    check_preset(preset)
    folder = Path(out) if out is not None else results_dir("lab1")
    folder.mkdir(parents=True, exist_ok=True)
    lab = Lab1(preset, folder, imdb_dir, progress)
    log(f"model: {lab.base_source['kind']} ({lab.base_source['name']}); test reviews {len(lab.data.test)}; "
        f"fine-tuning budget {FINETUNE} on {lab.p['finetune_samples']} reviews")
    results: dict[str, Any] = {}
    if task in ("quantize", "all", "prune"):
        results["quantize"] = quantize_task(lab, log)
    if task in ("prune", "all"):
        results["prune"] = prune_task(lab, results["quantize"], log)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flow.labs.lab1", description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=["quantize", "prune", "all"], default="all")
    lab_arguments(ap, "lab1")
    a = ap.parse_args(argv)
    return run_lab("lab1", a.threads, lambda: run(a.task, a.preset, a.out, a.imdb_dir, progress=not a.no_progress))

if __name__ == "__main__":
    raise SystemExit(main())
