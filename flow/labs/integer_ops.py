"""bert-tiny with flow's integer LayerNorm, softmax and GELU (flow.arith): test accuracy of the
float model, then of the integer ops before and after lab 1's fine-tuning pass (QAT through the
approximations), with every Linear float and with every Linear in fixed 8/4 (lab 1's width 8).

`python -m flow.labs.integer_ops --preset smoke|full --seeds 0` starts from lab 1's base model of
each seed (trained when absent, as lab 1 does) and writes results/integer_ops/qat_<preset>.json and
its figure. Each point is stored as soon as it is measured, so a rerun continues.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

from torch import nn

from flow.formats.fixed import FixedFormat
from flow.labs.common import check_preset, lab_arguments, parse_seeds, run_lab, update_json
from flow.labs.lab1 import Lab1, fixed_config
from flow.labs.stats import binomial_halfwidth
from flow.passes import quantize_module
from flow.passes.integer_ops import IntegerOpsConfig, use_integer_ops
from flow.paths import current_commit, results_dir

S16_8, S8_4 = FixedFormat(16, 8), FixedFormat(8, 4)
#: every tensor fixed point: Linears take s8.4 inputs, weights and biases and give s16.8; Q, K, V
#: and the attention context enter the matmuls as s8.4; the pooler's tanh takes s16.8
END_TO_END = IntegerOpsConfig(attention_in=S8_4, context_out=S8_4, tanh_in=S16_8)
#: variant -> (the width of every Linear's input, weight and bias formats (None: float Linears),
#: whether Linear outputs are s16.8 too, the integer ops' formats)
VARIANTS: dict[str, tuple[int | None, bool, IntegerOpsConfig]] = {
    "integer ops": (None, False, IntegerOpsConfig()),
    "integer ops, fixed 8/4 Linears": (8, False, IntegerOpsConfig()),
    "every tensor fixed point": (8, True, END_TO_END),
}
STAGES = ("before fine-tuning", "after fine-tuning")


def linear_config(width: int, outputs: bool) -> dict[str, Any]:
    """lab 1's fixed config at ``width``, with every Linear's output in s16.8 when ``outputs``."""
    config = fixed_config(width)
    if outputs:
        config["linear"] |= {"data_out_width": S16_8.width, "data_out_frac_width": S16_8.frac}
    return config


def variant_record(variant: str) -> dict[str, Any]:
    width, outputs, config = VARIANTS[variant]
    return {"linear_width": width, "linear_outputs": "s16.8" if outputs else "float", **config_record(config)}


def config_record(config: IntegerOpsConfig) -> dict[str, Any]:
    """The integer ops' formats as text, for the results file."""
    return {name: str(value) for name, value in vars(config).items() if value is not None}


def _key(point: dict[str, Any]) -> tuple[int, str, str]:
    return point["seed"], point["variant"], point["stage"]


def _store(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Merge this run's points into the file (a point measured elsewhere stays), with this commit."""
    def merge(disk: dict[str, Any] | None, mine: dict[str, Any]) -> dict[str, Any]:
        points = {_key(p): p for p in (disk or {}).get("points", [])} | {_key(p): p for p in mine["points"]}
        commits = set((disk or {}).get("commits", [])) | set(mine.get("commits", [])) | {current_commit() or "unknown"}
        return {**mine, "points": sorted(points.values(), key=_key), "commits": sorted(commits),
                "seeds": sorted({p["seed"] for p in points.values()})}
    return update_json(path, record, merge)


def _measure(lab: Lab1, model: nn.Module, seed: int, variant: str, stage: str, start: float) -> dict[str, Any]:
    return {"seed": seed, "variant": variant, "stage": stage,
            "test": lab.test_accuracy(model, f"test ({variant}, {stage})"),
            "val": lab.val_accuracy(model, f"val ({variant}, {stage})"),
            "seconds": round(time.perf_counter() - start, 1), "commit": current_commit()}


def measure(lab: Lab1, out: Path, seeds: tuple[int, ...], config: IntegerOpsConfig, log=print) -> dict[str, Any]:
    """Every (seed, variant, stage) point not yet in the results file, stored as it lands."""
    path = out / f"qat_{lab.preset}.json"
    record = json.loads(path.read_text()) if path.exists() else {
        **lab.header("integer_ops"), "integer_ops": config_record(config), "points": []}
    record["variants"] = {name: variant_record(name) for name in VARIANTS}
    for seed in seeds:
        lab.use_seed(seed)
        done = {_key(p) for p in record["points"]}
        if (seed, "float", "float") not in done:
            record["points"].append(_measure(lab, lab.base, seed, "float", "float", time.perf_counter()))
            record = _store(path, record)
        for variant, (width, outputs, ops) in VARIANTS.items():
            if all((seed, variant, stage) in done for stage in STAGES):
                continue
            start = time.perf_counter()
            model = copy.deepcopy(lab.base)
            if width is not None:
                quantize_module(model, linear_config(width, outputs))
            use_integer_ops(model, ops)
            if (seed, variant, STAGES[0]) not in done:
                record["points"].append(_measure(lab, model, seed, variant, STAGES[0], start))
                record = _store(path, record)
            lab.finetune(model)
            record["points"].append(_measure(lab, model, seed, variant, STAGES[1], start))
            record = _store(path, record)
            log(f"seed {seed} {variant}: " + ", ".join(
                f"{p['stage']} {p['test']:.4f}" for p in record["points"] if p["seed"] == seed and p["variant"] == variant))
    plot(record, out / f"qat_{lab.preset}.png")
    return record


def plot(record: dict[str, Any], path: Path) -> None:
    """Test accuracy of every variant and stage (seed means; bars: the test split's 95 % interval)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, means = [], []
    for variant in ["float", *record["variants"]]:
        for stage in ["float"] if variant == "float" else STAGES:
            tests = [p["test"] for p in record["points"] if (p["variant"], p["stage"]) == (variant, stage)]
            if tests:
                labels.append(variant if variant == "float" else f"{variant}\n{stage}")
                means.append(sum(tests) / len(tests))
    reviews = record["sizes"]["test"]
    fig, ax = plt.subplots(figsize=(7, 0.7 * len(labels) + 1.2))
    ax.barh(range(len(labels)), means, xerr=[binomial_halfwidth(m, reviews) for m in means], color="tab:blue",
            capsize=4)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(max(0.0, min(means) - 0.05), min(1.0, max(means) + 0.03))
    ax.set_xlabel(f"test accuracy on {reviews:,} reviews (bars: 95 % binomial interval)")
    seeds = ", ".join(str(s) for s in sorted({p["seed"] for p in record["points"]}))
    ax.set_title(f"bert-tiny with integer LayerNorm, softmax and GELU (seeds {seeds})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(preset: str = "smoke", out: str | Path | None = None, imdb_dir: str | None = None, progress: bool = True,
        log=print, seeds: tuple[int, ...] = (0,), lab1_out: str | Path | None = None) -> dict[str, Any]:
    check_preset(preset)
    folder = Path(out) if out is not None else results_dir("integer_ops")
    folder.mkdir(parents=True, exist_ok=True)
    base_folder = Path(lab1_out) if lab1_out is not None else (folder if out is not None else results_dir("lab1"))
    lab = Lab1(preset, base_folder, imdb_dir, progress, seeds[0])
    return measure(lab, folder, seeds, IntegerOpsConfig(), log)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flow.labs.integer_ops", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2 (each lab 1's base model)")
    lab_arguments(ap, "integer_ops")
    a = ap.parse_args(argv)
    return run_lab("integer_ops", a.threads, lambda: run(a.preset, a.out, a.imdb_dir, progress=not a.no_progress,
                                                         seeds=parse_seeds(a.seeds)), a.device)


if __name__ == "__main__":
    raise SystemExit(main())
