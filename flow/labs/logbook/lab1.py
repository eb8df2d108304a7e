"""LOGBOOK blocks of lab 1 (fixed-point width sweep and pruning), from results/lab1/."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flow.labs.common import CHANCE
from flow.labs.logbook.blocks import register
from flow.labs.logbook.fmt import load, mean, minutes, over_seeds, points, table
from flow.labs.stats import at_chance


def _float_test(record: dict[str, Any]) -> float:
    return mean([f["test"] for f in record["floats"]])


def _seeds(record: dict[str, Any]) -> str:
    seeds = record["seeds"]
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))} (mean (min-max))"


@register("lab1.float")
def float_line(root: Path) -> str:
    q = load(root, "results/lab1/quantize_full.json")
    tests, vals = [f["test"] for f in q["floats"]], [f["val"] for f in q["floats"]]
    return (f"- **Float bert-tiny at {q['max_length']} tokens, {_seeds(q)}: test accuracy {over_seeds(tests)}** on "
            f"the whole {q['sizes']['test']:,}-review test split, validation {over_seeds(vals)} on "
            f"{q['sizes']['val']:,} reviews.\n")


@register("lab1.quantize")
def quantize(root: Path) -> str:
    q = load(root, "results/lab1/quantize_full.json")
    base = _float_test(q)
    rows = []
    for width in sorted({p["width"] for p in q["points"]}):
        pts = [p for p in q["points"] if p["width"] == width]
        ptq, qat = [p["ptq"] for p in pts], [p["qat"] for p in pts]
        val = [p["qat_val"] for p in pts if "qat_val" in p]
        rows.append([width, pts[0]["frac"], over_seeds(ptq), over_seeds(qat), over_seeds(val) if val else "not measured",
                     points(mean(ptq) - base), points(mean(qat) - base),
                     f"{at_chance(ptq)} / {at_chance(qat)} of {len(pts)}"])
    return (f"Test accuracy on all {q['sizes']['test']:,} test reviews, {_seeds(q)}; QAT validation on the "
            f"{q['sizes']['val']:,}-review validation split (what selects task 2's start); at chance: accuracy "
            f"<= {CHANCE}.\n\n"
            + table(["width", "frac", "PTQ (test)", "QAT (test)", "QAT (validation)", "PTQ vs float", "QAT vs float",
                     "at chance, PTQ / QAT"], rows))


@register("lab1.prune.start")
def prune_start(root: Path) -> str:
    r = load(root, "results/lab1/prune_full.json")
    start = r["start"]
    qat = list(start["qat"].values())
    how = ("selected by its QAT validation accuracy (mean over seeds)" if start["selected_by"] == "validation" else
           f"**selected by {start['selected_by']}**; the code now selects on validation, so this task needs a "
           f"rerun of both tasks (`--seeds 0,1,2`) before its start is a validation choice")
    return (f"Start: the {start['width']}-bit QAT model of task 1 (test accuracy {over_seeds(qat)}), {how}. Pruning "
            f"is {r['scope']} (each Linear), weights only (activations are not pruned).\n")


@register("lab1.prune")
def prune(root: Path) -> str:
    r = load(root, "results/lab1/prune_full.json")
    base = mean(list(r["start"]["qat"].values()))
    rows = []
    for method in ("l1", "random"):
        for sparsity in sorted({p["sparsity"] for p in r["points"] if p["method"] == method}):
            pts = [p for p in r["points"] if (p["method"], p["sparsity"]) == (method, sparsity)]
            tuned = [p["finetuned"] for p in pts]
            tuned_val = [p["finetuned_val"] for p in pts if "finetuned_val" in p]
            rows.append([method, sparsity, f"{mean([p['reached'] for p in pts]):.3f}",
                         over_seeds([p["pruned_val"] for p in pts]),
                         over_seeds(tuned_val) if tuned_val else "not measured", over_seeds(tuned),
                         points(mean(tuned) - base), f"{at_chance(tuned)} of {len(pts)}"])
    return (f"{_seeds(r)}; at chance: fine-tuned test accuracy <= {CHANCE}.\n\n"
            + table(["method", "sparsity", "reached", "before fine-tuning (validation)",
                     "after fine-tuning (validation)", "after fine-tuning (test)", "vs unpruned (test)", "at chance"],
                    rows))


@register("lab1.times")
def times(root: Path) -> str:
    q, r = load(root, "results/lab1/quantize_full.json"), load(root, "results/lab1/prune_full.json")
    qs, ps = [p["seconds"] for p in q["points"]], [p["seconds"] for p in r["points"]]
    return (f"- **Wall time** (the sums of the points' own times in the JSON, with other jobs on the two cores): "
            f"the width figure took {minutes(sum(qs))} min ({minutes(min(qs))} to {minutes(max(qs))} min per width "
            f"and seed), the pruning figure {minutes(sum(ps))} min ({minutes(min(ps))} to {minutes(max(ps))} min per "
            f"point).\n")
