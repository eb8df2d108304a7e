"""LOGBOOK blocks of "bert-tiny in hardware" (issue 23): the emitted design's simulation, its accuracy
on the whole test split, three parallelism points and the hardware search, from results/bert_rtl/."""
from __future__ import annotations

from pathlib import Path

from flow.labs.logbook.blocks import register
from flow.labs.logbook.fmt import load, table, thousands


def _wall(seconds: float | None) -> str:
    return "not measured" if seconds is None else f"{seconds:,.0f} s"


@register("bert_rtl.rtl")
def rtl(root: Path) -> str:
    r = load(root, "results/bert_rtl/bert_tiny.json")
    s, c, v = r["sim"], r["cycle_model"], r["reviews"]
    short = v.get("shorter_than_seq")
    what = (f"the first test reviews, {short} of them shorter than {v['seq']} tokens (padding masked)"
            if short is not None else f"IMDb test reviews of at least {v['seq']} tokens")
    rows = [[f"vectors ({what})", s["vectors"]],
            ["mismatches (random gaps {:.0%}, backpressure {:.0%})".format(s["gap"], s["stall"]), s["mismatches"]],
            ["II, cycles: model / measured", f"{thousands(c['initiation_interval'])} / {thousands(s['initiation_interval'])}"],
            ["latency, cycles: model / measured", f"{thousands(c['latency'])} / {thousands(s['latency_cycles'])}"],
            ["hardware accuracy on the vectors (reference)", f"{s['hardware_accuracy']:.4f} ({s['reference_accuracy']:.4f})"],
            [f"`{r['commands']['emit']}` wall time", _wall(r["wall_seconds"]["emit"])],
            [f"`{r['commands']['sim']}` wall time (Verilator build {s['build_seconds']:,.0f} s)",
             _wall(r["wall_seconds"]["sim"])]]
    return table(["bert_tiny design (" + r["model"]["kind"] + " weights)", "value"], rows)


@register("bert_rtl.accuracy")
def accuracy(root: Path) -> str:
    r = load(root, "results/bert_rtl/accuracy.json")
    a, f, check = r["accuracy"], r["accuracy_full_length"], r["reference_check"]
    names = [("float, Hugging Face model with attention mask (lab 1's evaluation)", "float_masked"),
             ("float, the design's model (host embeddings, masked)", "float"),
             ("fake-quant, masked (the design's numbers)", "fake_quant"),
             ("exact integer reference, masked (the RTL's numbers)", "exact")]
    rows = [[label, f"{a[key]:.4f}", f"{f[key]:.4f}"] for label, key in names if key in a]
    if "exact" not in a:
        rows.append([f"exact integer reference, first {check['reviews']:,} reviews ({check['equal_code_for_code']:,} "
                     "equal to fake-quant code for code)", f"{check['exact_accuracy']:.4f}", ""])
    else:
        rows.append(["exact reference equal to fake-quant code for code (reviews)",
                     f"{check['equal_code_for_code']:,} of {check['reviews']:,}", ""])
    if r.get("exact_seconds"):
        rows.append(["exact reference, wall seconds a review (batched, shared CPU)",
                     f"{r['exact_seconds'] / check['reviews']:.2f}", ""])
    reviews = (f"all {r['reviews']:,} test reviews" if r.get("complete", True) else
               f"the first {r['reviews']:,} of {r['reviews_in_split']:,} test reviews (seeded shuffle)")
    return table(["model", f"accuracy, {reviews}", f"on the {r['reviews_full_length']:,} of at least {r['seq']} tokens"],
                 rows)


@register("bert_rtl.points")
def design_points(root: Path) -> str:
    r = load(root, "results/bert_rtl/design_points.json")
    rows = []
    for name, p in r["points"].items():
        e, y = p["estimate"], (p.get("yosys") or {}).get("xc7") or {}
        total = y.get("total") or {}
        synth = (f"{thousands(total['LUT'])} / {thousands(total['FF'])} / {total.get('DSP48E1', 0)} / "
                 f"{total.get('RAMB18E1', 0) + 2 * total.get('RAMB36E1', 0)}" if total else y.get("error", "not run"))
        sim = p.get("measured") or {}
        rows.append([name, f"{p['parallelism']['in_par']} / {p['parallelism']['out_par']}",
                     thousands(p["initiation_interval"]), thousands(p["latency"]),
                     f"{thousands(sim['initiation_interval'])} / {thousands(sim['latency'])}" if sim else "not simulated",
                     thousands(e["LUT"]), thousands(e["FF"]), thousands(e["DSP48E1"]), synth])
    return table(["point", "in_par / out_par", "II (model)", "latency (model)", "II / latency (sim)", "LUT (est)",
                  "FF (est)", "DSP48E1 (est)", "Yosys xc7 LUT / FF / DSP / BRAM18"], rows)
