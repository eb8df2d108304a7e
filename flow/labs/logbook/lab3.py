"""LOGBOOK blocks of lab 3 (mixed-precision search), from results/lab3/ and lab 1's float model."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flow.labs.common import CHANCE
from flow.labs.logbook.blocks import register
from flow.labs.logbook.fmt import load, mean, over_seeds, study_times, table
from flow.labs.logbook.lab1 import PRUNE_BASE
from flow.labs.stats import binomial_halfwidth, interval, separated

WIDTHS = "results/lab3/widths_full.json"
FORMATS = "results/lab3/formats_full.json"
BUDGETS = ("2.5", "4.5", "6.5", "8.5")
LABELS = {"fixed": "fixed", "minifloat": "minifloat with denormals", "minifloat_ieee": "IEEE-like minifloat",
          "log": "log", "block_fp": "block floating point", "block_minifloat": "block minifloat",
          "block_log": "block log", "binary": "binary", "ternary": "ternary"}


def _float(root: Path, record: dict[str, Any]) -> dict[str, float]:
    """Float bert-tiny (lab 1's base model of each seed the record's studies started from) on
    validation and test, mean over those seeds; records from before lab 3 measured its own float test
    accuracy started from the seed-0 CPU run of lab 1."""
    if record.get("float_test"):
        return {"val": mean(list(record["float_val"].values())), "test": mean(list(record["float_test"].values())),
                "test_reviews": record["sizes"]["test"], "val_reviews": record["sizes"]["val"]}
    q = load(root, PRUNE_BASE)
    return {"val": mean([f["val"] for f in q["floats"]]), "test": mean([f["test"] for f in q["floats"]]),
            "test_reviews": q["sizes"]["test"], "val_reviews": q["sizes"]["val"]}


def _seeds(record: dict[str, Any]) -> list[int]:
    return sorted({s["seed"] for s in record["studies"].values()})


def _seed_list(record: dict[str, Any]) -> str:
    seeds = _seeds(record)
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"


@register("lab3.budget")
def budget(root: Path) -> str:
    w = load(root, WIDTHS)
    f = _float(root, w)
    return (f"**Budget per trial, the same everywhere:** lab 1's bert-tiny (trained from scratch, {w['max_length']} "
            f"tokens; float validation {f['val']:.4f}, test {f['test']:.4f}) is quantized as the trial says (every "
            f"chosen Linear's input, weight and bias in the chosen format; bias copied, not dropped). It is then "
            f"trained for one pass over {w['qat']['samples']:,} seeded training reviews (QAT, AdamW lr "
            f"{w['qat']['lr']:g}, batch {w['qat']['batch_size']}) and scored on the {w['sizes']['val']:,}-review "
            f"validation split (95 % binomial interval ±{100 * binomial_halfwidth(0.85, w['sizes']['val']):.1f} "
            f"points at 0.85). {w['sampler'].upper()} sampler, {_seed_list(w)}, 20 trials per "
            f"study. Each study's best model (by validation) is tested on the whole {w['sizes']['test']:,}-review test "
            f"split (±{100 * binomial_halfwidth(0.81, w['sizes']['test']):.1f} points).\n")


@register("lab3.widths")
def widths(root: Path) -> str:
    w = load(root, WIDTHS)
    f = _float(root, w)
    lines = []
    for study in sorted(w["studies"].values(), key=lambda s: s["seed"]):
        best, params = study["best"], study["best"]["params"]
        quantized = [k.removesuffix(".format") for k, v in params.items() if k.endswith(".format") and v == "fixed"]
        shapes = ", ".join(f"`{k.removeprefix('bert.encoder.')}` {params[k + '.fixed.width']}/"
                           f"{params[k + '.fixed.frac_width']}" for k in quantized)
        total = sum(k.endswith(".format") for k in params)
        lines += [f"- **Best configuration, seed {study['seed']}** (trial {best['number']} of {study['trials']}): "
                  f"{best['attrs']['quantized_layers']} layers quantized, {total - len(quantized)} left in full "
                  f"precision ({shapes}); {best['attrs']['bits_per_weight']:.1f} bits per weight on average.",
                  f"  - Validation {best['val']:.4f} ({best['attrs']['ptq_val']:.4f} right after PTQ); **test "
                  f"{study['test']:.4f}**, against the float model's {f['test']:.4f}: their 95 % intervals on the test "
                  f"split (±{100 * binomial_halfwidth(study['test'], f['test_reviews']):.1f} points) overlap "
                  f"(indistinguishable)." if not separated(interval(study["test"], f["test_reviews"]),
                                                          interval(f["test"], f["test_reviews"]))
                  else f"  - Validation {best['val']:.4f}; test {study['test']:.4f}, against float {f['test']:.4f}.",
                  f"  - {study['at_chance']} of {study['trials']} trials at chance (<= {CHANCE}); {study_times([study])}, "
                  f"while other jobs shared the 2 cores."]
    return "\n".join(lines) + "\n"


@register("lab3.formats.setup")
def formats_setup(root: Path) -> str:
    r = load(root, FORMATS)
    studies = list(r["studies"].values())
    layers = {n for s in studies for n in s["quantized_layers"]}
    trials = sum(len(s["values"]) for s in studies)
    full = ("Each Linear either stays in full precision or takes the format" if r["allow_full"] else
            f"**Every Linear takes the format** (no full-precision choice: `allow_full` is false), so each of the "
            f"{trials} trials quantized {' or '.join(map(str, sorted(layers)))} of the 14 Linears")
    per_study = " or ".join(map(str, sorted({s["trials"] for s in studies})))
    return (f"{len(studies)} studies, one per format and seed ({r['sampler'].upper()}, {_seed_list(r)}), {per_study} "
            f"trials each, on the budget above, on a core shared with other jobs: {study_times(studies)}. {full}, "
            f"with its own arguments:\n")


@register("lab3.formats")
def formats(root: Path) -> str:
    r = load(root, FORMATS)
    f = _float(root, r)
    rows = []
    for fmt, label in LABELS.items():
        studies = [s for s in r["studies"].values() if s["format"] == fmt]
        if not studies:
            continue
        vals, tests = [s["best"]["val"] for s in studies], [s["test"] for s in studies]
        bits = [s["best"]["attrs"]["bits_per_weight"] for s in studies]
        budgets = []
        for key in BUDGETS:
            within = [s["bits_table"][key] for s in studies if s["bits_table"].get(key) is not None]
            budgets.append(over_seeds(within) if len(within) == len(studies) else "-")
        chance = sum(s["at_chance"] for s in studies)
        rows.append([label, over_seeds(vals), over_seeds(bits, 1), over_seeds(tests), *budgets,
                     f"{chance} of {sum(len(s['values']) for s in studies)}",
                     f"{sum(s['wall_seconds'] for s in studies):,.0f}"])
    return (f"Float bert-tiny: validation {f['val']:.4f}, test {f['test']:.4f}. 95 % binomial intervals: "
            f"±{100 * binomial_halfwidth(0.85, f['val_reviews']):.1f} points on validation, "
            f"±{100 * binomial_halfwidth(0.81, f['test_reviews']):.1f} on test. \"-\": no trial of the study fits that "
            f"budget. At chance: validation accuracy <= {CHANCE}.\n\n"
            + table(["format", "best validation", "its bits per weight", "its test accuracy",
                     *(f"best val at <= {b} bits" for b in BUDGETS), "trials at chance", "wall (s)"], rows))


@register("lab3.formats.reading")
def formats_reading(root: Path) -> str:
    r = load(root, FORMATS)
    f = _float(root, r)
    n = f["test_reviews"]
    float_interval = interval(f["test"], n)
    tests = {fmt: mean([s["test"] for s in r["studies"].values() if s["format"] == fmt])
             for fmt in LABELS if any(s["format"] == fmt for s in r["studies"].values())}
    apart = {fmt: t for fmt, t in tests.items() if separated(interval(t, n), float_interval)}
    same = {fmt: t for fmt, t in tests.items() if fmt not in apart}
    vals = [s["best"]["val"] for s in r["studies"].values() if s["format"] in same]
    chance = {}
    for study in r["studies"].values():
        label = LABELS[study["format"]]
        done, total = chance.get(label, (0, 0))
        chance[label] = (done + study["at_chance"], total + len(study["values"]))
    separated_text = ", ".join(f"{LABELS[x]} ({t:.4f}, {100 * (t - f['test']):+.2f} points)" for x, t in apart.items())
    return (f"- **Test accuracy indistinguishable from float (95 % intervals overlap): "
            f"{', '.join(LABELS[x] for x in same)}** ({min(same.values()):.4f} to {max(same.values()):.4f} against "
            f"{f['test']:.4f}; their best validation accuracies span {min(vals):.4f} to {max(vals):.4f}). No ranking "
            f"among them is supported by one seed.\n"
            + (f"- **Separated from float: {separated_text}.**\n" if apart else "")
            + f"- **Trials at chance** (validation <= {CHANCE}): "
            + ", ".join(f"{k} {n} of {total}" for k, (n, total) in chance.items() if n)
            + "; the other formats none. A trial at chance is a trial the search spent on a model that did not train.\n")
