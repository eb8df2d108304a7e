"""LOGBOOK blocks of the hardware stream: lab 4, the hardware-aware search, and the default
design's resource estimate (pending: its results file is not committed yet)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flow.labs.logbook.blocks import register
from flow.labs.logbook.fmt import load, table, thousands


@register("lab4")
def lab4_section(root: Path) -> str:
    from flow.labs.lab4 import logbook_section

    return logbook_section(load(root, "results/lab4/leaky_relu.json"), load_list(root, "results/emit/variants.json"))


def load_list(root: Path, relative: str) -> Any:
    import json

    path = root / relative
    if not path.exists():
        raise FileNotFoundError(f"{relative} does not exist; run `make verify-designs`")
    return json.loads(path.read_text())


def _layer(name: str, c: dict[str, Any]) -> str:
    fold = f"{c['in_fold']}/{c['out_fold']}" if c["in_fold"] is not None else f"{c['out_fold']}"
    return f"{name} {c['width']}, {c['weight_frac']}/{c['data_frac']}, {fold}, {c['multiplier']}, {c['sparsity']}"


@register("hw_search.confirmed")
def hw_search(root: Path) -> str:
    r = load(root, "results/hw_search/hw_search.json")
    rows = []
    for c in r["confirmed"]:
        est, syn = c["estimated"], c["synthesized"]
        rows.append([c["trial"], "; ".join(_layer(n, layer) for n, layer in c["choice"].items()),
                     f"{c['val_accuracy']:.3f}", f"{c['hardware_accuracy']:.3f}", c["mismatches"],
                     *(f"{thousands(est[k])} / {thousands(syn[k])}" for k in ("LUT", "FF", "DSP48E1")),
                     f"{c['latency_model']:.0f} / {c['latency_measured']}", c["ii_measured"]])
    errors = ", ".join(f"{100 * (c['estimated']['LUT'] - c['synthesized']['LUT']) / c['synthesized']['LUT']:+.0f} %"
                       for c in r["confirmed"])
    return (table(["trial", "layers (width, frac w/x, fold, multiplier, sparsity)", "val acc", "hardware acc (test)",
                   "mismatches", "LUT est / synth", "FF est / synth", "DSP est / synth", "latency model / sim", "II"],
                  rows)
            + f"\nEstimated LUTs against synthesized, trial by trial: {errors}.\n")


@register("estimate.default_design")
def default_design(root: Path) -> str:
    """The hierarchical estimate of the default design (the report ``flow estimate`` writes, copied to
    results/estimate/default_design.json)."""
    r = load(root, "results/estimate/default_design.json")["estimate"]
    x, e = r["xc7"], r["ecp5"]
    names = [*x["layers"], "total"]
    rows = [[name, *({**x["layers"], "total": x["total"]}[name].values()),
             *({**e["layers"], "total": e["total"]}[name].values())] for name in names]
    return table(["instance", *(f"xc7 {k}" for k in x["total"]), *(f"ECP5 {k}" for k in e["total"])], rows)
