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
    """The hierarchical estimate of the default design (``flow estimate hw/gen/digits_mlp --json
    results/estimate/digits_mlp.json``), with its times, logic depth and why it has no Fmax."""
    r = load(root, "results/estimate/digits_mlp.json")
    x, e = r["xc7"], r["ecp5"]
    names = [*x["layers"], "total"]
    rows = [[name, *(thousands(v) for v in {**x["layers"], "total": x["total"]}[name].values()),
             *(thousands(v) for v in {**e["layers"], "total": e["total"]}[name].values())] for name in names]
    pnr = e.get("pnr") or {}
    fmax = f"ECP5 Fmax {pnr['fmax_mhz']} MHz" if pnr.get("fmax_mhz") else f"no ECP5 Fmax: {pnr.get('error', 'not run')}"
    return (table(["instance", *(f"xc7 {k}" for k in x["total"]), *(f"ECP5 {k}" for k in e["total"])], rows)
            + f"\nxc7 LUT counts every cell that takes a LUT ({x['total']['INV']} of them INV cells); "
            f"synthesis took {x['seconds']} s (xc7) and {e['seconds']} s (ECP5) on the shared cores; logic depth "
            f"{x['logic_depth']} cells; {fmax}.\n")


@register("estimator.held_out")
def estimator_held_out(root: Path) -> str:
    """The analytical estimator's errors on the designs its fit never saw (flow/estimate/calibration.json)."""
    held = load(root, "flow/estimate/calibration.json")["held_out"]
    rows = [[kind.replace("_", "-"), h["designs"], *(f"{100 * h[res][stat]:.1f} %" for res in ("LUT", "FF")
                                                   for stat in ("median", "worst")), f"{100 * h['DSP_exact']:.1f} %"]
            for kind, h in held.items()]
    return table(["held out", "designs", "LUT median", "LUT worst", "FF median", "FF worst", "DSP exact"], rows)


@register("estimator.pareto")
def estimator_pareto(root: Path) -> str:
    """The four confirmed Pareto points synthesized again (results/hw_search/estimator_remeasured.json)."""
    rows = []
    for p in load_list(root, "results/hw_search/estimator_remeasured.json"):
        old_est, old_syn, est, syn = p["old_estimated"], p["old_synthesized"], p["estimated"], p["synthesized"]
        rows.append([p["trial"], f"{thousands(old_est['LUT'])} / {thousands(old_syn['LUT'])}",
                     f"{thousands(est['LUT'])} / {thousands(syn['LUT'])}",
                     f"{_error(old_est, old_syn)} / {_error(est, syn)}",
                     f"{thousands(est['FF'])} / {thousands(syn['FF'])}", f"{est['DSP48E1']} / {syn['DSP48E1']}"])
    return table(["trial", "LUT est / synth (then)", "LUT est / synth (now)", "LUT error then / now",
                  "FF est / synth (now)", "DSP est / synth"], rows)


def _error(estimated: dict[str, int], synthesized: dict[str, int]) -> str:
    return f"{100 * (estimated['LUT'] - synthesized['LUT']) / synthesized['LUT']:+.0f} %"
