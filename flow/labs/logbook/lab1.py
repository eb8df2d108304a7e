"""LOGBOOK blocks of lab 1 (fixed-point width sweep and pruning), from results/lab1/."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flow.labs.common import CHANCE
from flow.labs.lab1 import best_width, pruned_start
from flow.labs.logbook.blocks import register
from flow.labs.logbook.fmt import load, mean, minutes, over_seeds, points, table
from flow.labs.stats import at_chance, separated

QUANTIZE = "results/lab1/quantize_full.json"
# Task 2's stored run started from this earlier seed-0 run of task 1 (CPU, another base model); once
# `make lab1` has rerun task 2 on the current base models, point this at QUANTIZE.
PRUNE_BASE = "results/lab1/quantize_full_seed0_cpu.json"


def _float_test(record: dict[str, Any]) -> float:
    return mean([f["test"] for f in record["floats"]])


def _seeds(record: dict[str, Any]) -> str:
    seeds = record["seeds"]
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))} (mean (min-max))"


@register("lab1.float")
def float_line(root: Path) -> str:
    q = load(root, QUANTIZE)
    tests, vals = [f["test"] for f in q["floats"]], [f["val"] for f in q["floats"]]
    return (f"- **Float bert-tiny at {q['max_length']} tokens, {_seeds(q)}: test accuracy {over_seeds(tests)}** on "
            f"the whole {q['sizes']['test']:,}-review test split, validation {over_seeds(vals)} on "
            f"{q['sizes']['val']:,} reviews.\n")


@register("lab1.quantize")
def quantize(root: Path) -> str:
    q = load(root, QUANTIZE)
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


def _recreated(start: dict[str, Any], floats: dict[str, float]) -> str:
    """The seeds whose starting model was trained again here (task 1's checkpoint was on another
    machine), with its accuracy beside task 1's."""
    again = start.get("recreated", {})
    if not again:
        return ""
    parts = [f"seed {seed}: QAT validation {a['qat_val']:.4f} against task 1's {start['qat_val'][seed]:.4f}, test "
             f"{a['qat']:.4f} against {start['qat'][seed]:.4f} (float base validation {a['base_val']:.4f} against "
             f"{floats[seed]:.4f})" for seed, a in sorted(again.items())]
    return (f" Task 1's checkpoints stayed on the machine that ran it, so task 2 trained the starting model of "
            f"{len(again)} seed(s) again with the same recipe on this machine: " + "; ".join(parts) + ".")


@register("lab1.prune.start")
def prune_start(root: Path) -> str:
    r = load(root, "results/lab1/prune_full.json")
    start = r["start"]
    qat = list(start["qat"].values())
    floats = {str(f["seed"]): f["val"] for f in load(root, QUANTIZE)["floats"]}
    if start["selected_by"] == "validation":
        pruned = pruned_start(start).values()
        return (f"Start: the {start['width']}-bit QAT model of task 1 (test accuracy {over_seeds(qat)}), selected by "
                f"its QAT validation accuracy (mean over seeds). Pruning is {r['scope']} (each Linear), weights only "
                f"(activations are not pruned).{_recreated(start, floats)} **The models pruned** (the unpruned "
                f"reference of the table and the figure): validation {over_seeds([s['qat_val'] for s in pruned])}, "
                f"test {over_seeds([s['qat'] for s in pruned])}.\n")
    old = load(root, PRUNE_BASE)
    return (f"**This table is an earlier run, not the three seeds above.** It started from the {start['width']}-bit "
            f"QAT model (test accuracy {over_seeds(qat)}) of a seed-0 run of task 1 on the CPU (`{PRUNE_BASE}`: "
            f"another base model, float test {_float_test(old):.4f}), **selected by {start['selected_by']}**. The "
            f"rerun from the new base models, selected on validation, is pending: their checkpoints stayed on the GPU "
            f"machine, and task 2 needs them, so both tasks rerun together (move `{QUANTIZE}` and "
            f"`results/lab1/prune_full.json` aside, then `make lab1` or the fanout). Pruning is {r['scope']} (each Linear), "
            f"weights only (activations are not pruned).\n")


@register("lab1.prune")
def prune(root: Path) -> str:
    r = load(root, "results/lab1/prune_full.json")
    base = mean([s["qat"] for s in pruned_start(r["start"]).values()])
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


def _prune_cells(r: dict[str, Any]) -> dict[tuple[str, float], list[dict[str, Any]]]:
    cells: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for p in r["points"]:
        cells.setdefault((p["method"], p["sparsity"]), []).append(p)
    return dict(sorted(cells.items()))


def _first_below(cells: dict[tuple[str, float], list[dict[str, Any]]], method: str, key: str, base: float,
                 drop: float = 0.02) -> str:
    """The lowest sparsity at which ``method``'s mean ``key`` is more than ``drop`` below ``base``."""
    for (m, sparsity), pts in cells.items():
        value = mean([p[key] for p in pts])
        if m == method and value < base - drop:
            chance = at_chance([p[key] for p in pts])
            return (f"from {sparsity} ({value:.4f}, {points(value - base)}"
                    + (f"; at chance in {chance} of {len(pts)} seeds" if chance else "") + ")")
    top = max(s for m, s in cells if m == method)
    value = mean([p[key] for p in cells[(method, top)]])
    return f"never, up to {top} ({value:.4f} at {top}, {points(value - base)})"


@register("lab1.prune.reading")
def prune_reading(root: Path) -> str:
    r = load(root, "results/lab1/prune_full.json")
    start = list(pruned_start(r["start"]).values())
    test, val = [s["qat"] for s in start], [s["qat_val"] for s in start]
    cells = _prune_cells(r)
    methods = sorted({m for m, _ in cells})
    lines = [f"- **More than 2 points below the models pruned, after fine-tuning** (test split, mean over "
             f"{len(r['seeds'])} seeds, against {mean(test):.4f}):"]
    lines += [f"  - **{m}: {_first_below(cells, m, 'finetuned', mean(test))}**;" for m in methods]
    lines.append(f"- **Before fine-tuning** (validation split, against the models' {mean(val):.4f}), more than 2 "
                 f"points below:")
    lines += [f"  - {m}: {_first_below(cells, m, 'pruned_val', mean(val))};" for m in methods]
    apart = [f"{m} {s} ({over_seeds([p['finetuned'] for p in pts])})" for (m, s), pts in cells.items()
             if separated((min(p["finetuned"] for p in pts), max(p["finetuned"] for p in pts)), (min(test), max(test)))]
    lines.append(f"- **Separated from the unpruned models' seed range** ({min(test):.4f}-{max(test):.4f}, test) after "
                 f"fine-tuning: " + (", ".join(apart) if apart else "none") + "; every other point's seed range "
                 "overlaps it: **indistinguishable** from the unpruned models, whether above or below their mean."
                 + (" A point above them is not a gain from pruning alone: its fine-tuning pass is also training the "
                    "unpruned models did not get." if any(mean([p["finetuned"] for p in pts]) > max(test) for
                                                          (m, s), pts in cells.items()) else ""))
    if ("l1", 0.5) in cells:
        l1 = cells[("l1", 0.5)]
        lines.append(f"- **Against the reference's anchor** (pretrained, l1 at 0.5: 0.728 before fine-tuning, 0.831 "
                     f"after 5 epochs): our l1 at 0.5 keeps {over_seeds([p['pruned_val'] for p in l1])} (validation) "
                     f"before fine-tuning and {over_seeds([p['finetuned'] for p in l1])} (test) after one pass over "
                     f"4,000 reviews.")
    return "\n".join(lines) + "\n"


@register("lab1.quantize.reading")
def quantize_reading(root: Path) -> str:
    q = load(root, QUANTIZE)
    floats = [f["test"] for f in q["floats"]]
    seeds = len(q["seeds"])
    lines = []
    for width in sorted({p["width"] for p in q["points"]}):
        pts = [p for p in q["points"] if p["width"] == width]
        ptq, qat = [p["ptq"] for p in pts], [p["qat"] for p in pts]
        if at_chance(ptq) == len(pts) and at_chance(qat) == len(pts):
            lines.append(f"- **Width {width}: PTQ and QAT at chance in all {len(pts)} seeds** (every review gets one "
                         f"class; frac = width / 2 = {width // 2} rounds every weight below 2^-{width // 2 + 1} in "
                         f"magnitude to zero, and one QAT pass does not recover it).")
            continue
        verdict = {kind: ("its seed range overlaps float's: **indistinguishable**" if not separated(
            (min(v), max(v)), (min(floats), max(floats))) else "its seed range is **separated** from float's")
                   for kind, v in (("PTQ", ptq), ("QAT", qat))}
        lines.append(f"- **Width {width}:** PTQ {points(mean(ptq) - mean(floats))} from float, {verdict['PTQ']}; "
                     f"QAT {points(mean(qat) - mean(floats))}, {verdict['QAT']}.")
    width = best_width(q)
    anchors = [p for p in q["points"] if p["width"] == 8]
    lines.append(f"- **Task 2 starts from width {width}**: the highest QAT validation accuracy, mean over {seeds} "
                 f"seeds (the narrowest on a tie); test accuracy does not select.")
    if anchors:
        lines.append(f"- **Against the reference's anchors** (pretrained bert-tiny: float 0.819, 8-bit PTQ 0.774, "
                     f"8-bit QAT 0.840): our 8-bit PTQ is {points(mean([p['ptq'] for p in anchors]) - mean(floats))} "
                     f"from our float where the reference lost 4.5 points, and our QAT does not climb above float "
                     f"(the reference's QAT was a full epoch on 25,000 reviews, more training than its base model "
                     f"had; ours is one pass over 4,000).")
    return "\n".join(lines) + "\n"


def _where(meta: dict[str, Any]) -> str:
    """Where a run measured its times, from its metadata."""
    device = meta.get("device", "cpu")
    if device.startswith("cuda"):
        return f"one {device[6:-1]} GPU shared by the parallel processes of `flow.labs.fanout`"
    return f"the CPU ({meta['cpu_threads']} threads, two cores shared with other jobs)"


@register("lab1.times")
def times(root: Path) -> str:
    q, r = load(root, QUANTIZE), load(root, "results/lab1/prune_full.json")
    qs, ps = [p["seconds"] for p in q["points"]], [p["seconds"] for p in r["points"]]
    return (f"- **Wall time** (the sums of the points' own times in the JSON): the width figure "
            f"{minutes(sum(qs))} min ({minutes(min(qs))} to {minutes(max(qs))} min per width and seed) on "
            f"{_where(q['meta'])}; the pruning figure {minutes(sum(ps))} min ({minutes(min(ps))} to "
            f"{minutes(max(ps))} min per point) on {_where(r['meta'])}" + (
                f"; {minutes(sum(a['seconds'] for a in again.values()))} min of it retrained the {len(again)} starting "
                f"models (each in its seed's first point)" if (again := r["start"].get("recreated")) else "") + ".\n")
