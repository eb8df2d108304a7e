"""LOGBOOK blocks of the integer transformer ops' QAT run (flow.labs.integer_ops), from results/integer_ops/."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flow.labs.common import CHANCE
from flow.labs.integer_ops import STAGES
from flow.labs.logbook.blocks import register
from flow.labs.logbook.fmt import load, mean, minutes, over_seeds, points, table
from flow.labs.stats import at_chance, interval, separated

QAT = "results/integer_ops/qat_full.json"
ERRORS = "results/integer_ops/activations_seed0.json"


def _tests(record: dict[str, Any], variant: str, stage: str) -> list[float]:
    return [p["test"] for p in record["points"] if (p["variant"], p["stage"]) == (variant, stage)]


def _rows(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(variant, stage) of every measured row, float first."""
    rows = [("float", "float")] + [(v, s) for v in record["variants"] for s in STAGES]
    return [row for row in rows if _tests(record, *row)]


def _verdict(record: dict[str, Any], variant: str, stage: str) -> str:
    """Whether a row's 95 % interval on the test split separates from float's."""
    reviews = record["sizes"]["test"]
    mine, base = mean(_tests(record, variant, stage)), mean(_tests(record, "float", "float"))
    return "separated" if separated(interval(mine, reviews), interval(base, reviews)) else "indistinguishable"


@register("integer_ops.qat")
def qat_table(root: Path) -> str:
    r = load(root, QAT)
    base = mean(_tests(r, "float", "float"))
    rows = []
    for variant, stage in _rows(r):
        tests = _tests(r, variant, stage)
        vals = [p["val"] for p in r["points"] if (p["variant"], p["stage"]) == (variant, stage)]
        rows.append([variant, stage, over_seeds(tests), over_seeds(vals),
                     "" if variant == "float" else f"{points(mean(tests) - base)}, {_verdict(r, variant, stage)}",
                     f"{at_chance(tests)} of {len(tests)}"])
    seeds = ", ".join(map(str, r["seeds"]))
    return (f"Seed {seeds}; test accuracy on all {r['sizes']['test']:,} test reviews, validation on "
            f"{r['sizes']['val']:,}; fine-tuning: lab 1's pass ({r['finetune']['samples']:,} reviews, "
            f"{r['finetune']['epochs']} epoch, learning rate {r['finetune']['lr']:g}); \"separated\" only where the "
            f"95 % binomial intervals of the test split do not overlap; at chance: accuracy <= {CHANCE}.\n\n"
            + table(["Linears / ops", "stage", "test", "validation", "vs float (test)", "at chance"], rows))


@register("integer_ops.reading")
def reading(root: Path) -> str:
    r = load(root, QAT)
    base = mean(_tests(r, "float", "float"))
    ops = r["integer_ops"]
    lines = [f"- **Formats**: softmax input {ops['softmax_in']} with {ops['softmax_out_frac']} output fraction bits, "
             f"GELU {ops['gelu_in']} to {ops['gelu_out']}, LayerNorm {ops['layer_norm_in']} to "
             f"{ops['layer_norm_out']} with its affine constants in {ops['layer_norm_affine']}."]
    for variant in r["variants"]:
        said = [f"{points(mean(_tests(r, variant, stage)) - base)} from float {stage} ({_verdict(r, variant, stage)})"
                for stage in STAGES if _tests(r, variant, stage)]
        missing = [stage for stage in STAGES if not _tests(r, variant, stage)]
        lines.append(f"- **{variant}**: " + ("; ".join(said) or "not measured")
                     + (f"; {' and '.join(missing)} not measured yet" if said and missing else "") + ".")
    reviews = r["sizes"]["test"]
    half = (interval(base, reviews)[1] - interval(base, reviews)[0]) / 2
    after = {v: mean(_tests(r, v, STAGES[1])) - base for v in r["variants"] if _tests(r, v, STAGES[1])}
    inside = all(_verdict(r, v, STAGES[1]) == "indistinguishable" for v in after)
    lines.append("- **Against I-BERT** (within a few tenths of a point of float): after fine-tuning flow lands at "
                 + ", ".join(f"{points(gap)} ({v})" for v, gap in after.items())
                 + (", inside" if inside else ", not all inside")
                 + f" the test split's own noise (95 % half-width {100 * half:.2f} points). "
                 f"{len(r['seeds'])} seed{'s' if len(r['seeds']) > 1 else ''}: the spread over seeds is "
                 f"{'in the table' if len(r['seeds']) > 1 else 'not measured'}.")
    float_s = [p["seconds"] for p in r["points"] if p["variant"] == "float"]
    before_s, after_s = ([p["seconds"] for p in r["points"] if p["stage"] == stage] for stage in STAGES)
    lines.append(f"- **Wall time** (the points' own times; a variant's clock runs from its first evaluation to its "
                 f"last): float's test and validation passes {minutes(sum(float_s))} min, the same with the integer "
                 f"ops {minutes(min(before_s))} to {minutes(max(before_s))} min (the kernels run as integer tensor "
                 f"code), a whole variant with its fine-tuning {minutes(min(after_s))} to {minutes(max(after_s))} min; "
                 f"on the {r['meta']['device'].upper()} with {r['meta']['cpu_threads']} thread, "
                 f"{minutes(sum(float_s) + sum(after_s))} min in all.")
    return "\n".join(lines) + "\n"


@register("integer_ops.errors")
def errors_table(root: Path) -> str:
    r = load(root, ERRORS)
    rows = [[f"`{e['module']}`", e["op"], f"{e['max_lsb']:.2f}", f"{e['mean_lsb']:.3f}", f"{e['elements']:,}"]
            for e in r["errors"]]
    return (f"Seed {r['seed']}'s model on the first {r['reviews']} test reviews, {r['tokens']} rows of each op's "
            f"input per review; error against the float op on the same quantized input, in output LSBs.\n\n"
            + table(["module", "op", "max error (LSB)", "mean error (LSB)", "elements"], rows))
