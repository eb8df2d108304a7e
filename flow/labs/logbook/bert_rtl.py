"""LOGBOOK blocks of "bert-tiny in hardware" (issue 23): the emitted design's simulation, its accuracy
on the whole test split, three parallelism points and the hardware search, from results/bert_rtl/."""
from __future__ import annotations

from pathlib import Path

from flow.labs.logbook.blocks import register
from flow.labs.logbook.fmt import load, table, thousands
from flow.labs.stats import coin_bound


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
        synth = (f"{thousands(total['LUT'])} / {thousands(total['FF'])} / {thousands(total.get('DSP48E1', 0))} / "
                 f"{_bram18(y['cells'])}" + ("" if y.get("complete", True) else " (incomplete)")
                 if total else "not synthesized (below)" if (p.get("yosys") or {}).get("error") else "not run")
        sim = p.get("measured") or {}
        rows.append([name, f"{p['parallelism']['in_par']} / {p['parallelism']['out_par']}",
                     thousands(p["initiation_interval"]), thousands(p["latency"]),
                     f"{thousands(sim['initiation_interval'])} / {thousands(sim['latency'])}" if sim else "not simulated",
                     thousands(e["LUT"]), thousands(e["FF"]), thousands(e["DSP48E1"]), synth])
    return table(["point", "in_par / out_par", "II (model)", "latency (model)", "II / latency (sim)", "LUT (est)",
                  "FF (est)", "DSP48E1 (est)", "Yosys xc7 LUT / FF / DSP / BRAM18 (per-module sum)"], rows)


# ---- flow search hw on bert-tiny (flow.labs.bert_search) ----
SEARCH = "results/bert_rtl/hw_search/bert_hw_search.json"
EXACT = "results/bert_rtl/hw_search/exact_check.json"


def _widths(row: dict) -> str:
    """The 14 weight widths as layer 0's q k v o i f / layer 1's / pooler, classifier."""
    w = [str(x) for x in row["weight_widths"]]
    return f"{' '.join(w[:6])} / {' '.join(w[6:12])} / {' '.join(w[12:])}"


@register("bert_rtl.search")
def search(root: Path) -> str:
    r = load(root, SEARCH)
    front = sorted((row for row in r["rows"] if row["front"]), key=lambda row: row["LUT"])
    rows = [[row["trial"], _widths(row), f"{row['par']} / {' '.join(str(p) for p in row['intermediate_out_par'])}",
             thousands(row["LUT"]), thousands(row["FF"]), thousands(row["DSP48E1"]), "not estimated",
             thousands(row["initiation_interval"]), thousands(row["latency"]),
             f"{row['accuracy']:.4f} ({row['reviews']})"] for row in front]
    return table(["trial", "weight widths: layer 0 q k v o i f / layer 1 / pooler classifier", "par / i out_par",
                  "LUT (est)", "FF (est)", "DSP48E1 (est)", "BRAM", "II", "latency", "val. accuracy (reviews)"], rows)


@register("bert_rtl.search_summary")
def search_summary(root: Path) -> str:
    r = load(root, SEARCH)
    rows, n = r["rows"], r["reviews"]["reviews"]
    acc = [row["accuracy"] for row in rows]
    chance = [row["trial"] for row in rows if row["at_chance"]]
    constant = [row["trial"] for row in rows if row["constant_output"]]
    front = [row for row in rows if row["front"]]
    return (f"{r['trials']} complete trials ({r['sampler']}, seed 0; `{r['command']}`), "
            f"{r['wall_seconds'] / 60:.0f} min of trials on the shared 2-core machine. Accuracy: the fake-quant "
            f"model on {n} reviews of lab 1's validation split ({r['reviews']['positive']} positive; "
            f"{r['reviews']['selection']}); the test split is not read. Across trials it spans "
            f"{min(acc):.4f} to {max(acc):.4f}; the config's own s8.4 weights score "
            f"{r['base_design_accuracy']:.4f} on the same reviews. Every Linear's largest |weight| is at most "
            f"{2.0 ** (-1 - min(r['weight_frac_minus_width'].values())):g}. {len(front)} trials are on the front. "
            f"At chance (accuracy within the 95 % interval of a coin on {n} reviews, <= "
            f"{coin_bound(n):.3f}): {len(chance)} trial(s){' ' + str(chance) if chance else ''}; "
            f"logits independent of the review (one class for all): {len(constant)}"
            f"{' ' + str(constant) if constant else ''}. {_exact(root)}\n")


def _exact(root: Path) -> str:
    e = load(root, EXACT)
    return (f"The scores are the fake-quant model's; on trial {e['trial']} the exact integer reference (the "
            f"RTL's) equals it code for code on {e['equal_code_for_code']} of {e['reviews']} reviews "
            f"(`{e['command']}`).")


def _bram18(cells: dict[str, int]) -> int:
    """Xilinx block RAM in 18 Kb halves: RAMB18E1 + 2 x RAMB36E1."""
    return cells.get("RAMB18E1", 0) + 2 * cells.get("RAMB36E1", 0)


def _modules(t: dict) -> str:
    units = t["units"].values()
    failed = f", {len(t['failed'])} failed or timed out ({', '.join(t['failed'])})" if t["failed"] else ""
    stages = sum(u["count"] for u in units if u["instances"] != ["(top)"])
    return f"{len(units) - 1} + the top's glue ({stages} instances){failed}"


@register("bert_rtl.synth")
def synthesis(root: Path) -> str:
    r = load(root, "results/bert_rtl/design_points.json")
    rows = []
    for name, p in r["points"].items():
        y = p.get("yosys") or {}
        if "xc7" in y:
            t, c, ratio = y["xc7"], y["xc7"]["cells"], y["xc7"]["ratio_to_estimate"]
            rows.append([name, "xc7", f"{thousands(t['total']['LUT'])} ({thousands(t['total']['INV'])} INV)",
                         thousands(t["total"]["FF"]), thousands(t["total"]["DSP48E1"]),
                         f"{c.get('RAMB36E1', 0)} RAMB36 + {c.get('RAMB18E1', 0)} RAMB18",
                         " / ".join("-" if ratio[k] is None else f"{ratio[k]:.2f}" for k in ("LUT", "FF", "DSP48E1")),
                         _modules(t), _wall(t["cold_seconds"])])
        if "ecp5" in y:
            t = y["ecp5"]
            total = t["total"]
            rows.append([name, "ECP5", f"{thousands(total['LUT4'])} LUT4 + {thousands(total['CCU2C'])} CCU2C",
                         thousands(total["FF"]), thousands(total["MULT18X18D"]), f"{total['BRAM']} DP16KD", "",
                         _modules(t), _wall(t["cold_seconds"])])
        if "error" in y:
            rows.append([name, "xc7", f"not synthesized: {y['error']}", "", "", "", "", "", _wall(y["seconds"])])
        if not y:
            rows.append([name, "not synthesized", "", "", "", "", "", "", ""])
    return table(["point", "target", "LUT", "FF", "DSP (DSP48E1 / MULT18X18D)", "block RAM",
                  "synth / estimator: LUT / FF / DSP", "distinct modules synthesized", "wall time (cold)"], rows)


@register("bert_rtl.synth_modules")
def synthesis_by_module(root: Path) -> str:
    """Where synthesis and the estimator part: xc7 LUT and FF summed by library module, per synthesized point."""
    r = load(root, "results/bert_rtl/design_points.json")
    done = {name: p["yosys"]["xc7"]["by_module"] for name, p in r["points"].items() if "xc7" in (p.get("yosys") or {})}
    if not done:
        return "No point synthesized yet.\n"
    modules = list(dict.fromkeys(m for rows in done.values() for m in rows))
    rows = []
    for module in modules:
        row: list[str] = [module]
        for rows_of in done.values():
            m = rows_of.get(module)
            row += ([str(m["instances"]), f"{thousands(m['LUT'])} / {thousands(m['LUT_est'])}",
                     f"{thousands(m['FF'])} / {thousands(m['FF_est'])}"] if m else ["", "", ""])
        rows.append(row)
    header = ["module"] + [f"{name}: {col}" for name in done for col in ("instances", "LUT synth / est", "FF synth / est")]
    return table(header, rows)
