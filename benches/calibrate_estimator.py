"""Calibrate flow.estimate.model on a Yosys sweep and measure it on held-out designs.

Draws seeded single-layer designs (a Linear and its ReLU, random or pruned weights; data and weight
widths 2 to 16; fully parallel on DSPs or shift-add, folded at several parallelisms) and seeded
multi-layer designs (benches/estimator_designs.py: 2 to 4 Linears of mixed styles with casts
between them, residual adds and concatenations with their forks and FIFOs), emits each,
synthesizes it with `flow estimate`'s xc7 flow and records every stage instance's features and
LUT/FF/DSP counts (and the top's own cells). Designs with an even index calibrate (non-negative
least squares per stage kind and resource); odd ones are held out, and their errors are reported
for single-layer and multi-layer designs apart. Writes flow/estimate/calibration.json (the data
and the coefficients). `python -m benches.calibrate_estimator [--designs N] [--multi M]`; the
sweep resumes from the designs already in the file.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls
from torch import nn

import flow
from benches.estimator_designs import MULTI_START, build_multi, draw_multi
from flow.cluster import open_executor
from flow.emit.rtl import stage_instance
from flow.estimate.design import design_sources, synth_xc7
from flow.estimate.model import (
    CALIBRATION,
    EXACT_FF_FEATURES,
    FF_ONLY_FEATURES,
    Calibration,
    dsp_count,
    stage_features,
    stage_kind,
)

WIDTHS = (2, 3, 4, 6, 8, 12, 16)
SHAPES = ((8, 4), (16, 8), (32, 16), (64, 32))
RESOURCES = ("LUT", "FF")


def draw(index: int) -> dict:
    """The index-th sweep design (seeded by its index)."""
    rng = random.Random(index)
    n_in, n_out = rng.choice(SHAPES)
    style = rng.choice(("parallel", "lut", "folded", "folded", "folded"))
    if style == "lut":  # shift-add: keep synthesis quick
        n_in, n_out = rng.choice(SHAPES[:3])
    x_w, w_w = rng.choice(WIDTHS), rng.choice(WIDTHS)
    if style == "lut":
        x_w, w_w = min(x_w, 8), min(w_w, 8)
    in_par, out_par = n_in, n_out
    if style == "folded":
        in_par = rng.choice([d for d in (1, 2, 4, 8, 16) if n_in % d == 0 and d < n_in] or [1])
        out_par = rng.choice([d for d in (1, 2, 4, 8) if n_out % d == 0])
    return {"index": index, "n_in": n_in, "n_out": n_out, "style": style, "x_width": x_w, "w_width": w_w,
            "in_par": in_par, "out_par": out_par, "sparsity": rng.choice((0.0, 0.0, 0.5, 0.9)), "seed": index}


def build(spec: dict):
    """The compiled design of a sweep spec (single- or multi-layer) and its input batch."""
    if spec["style"] == "multi":
        return build_multi(spec)
    torch.manual_seed(spec["seed"])
    model = nn.Sequential(nn.Linear(spec["n_in"], spec["n_out"]), nn.ReLU())
    with torch.no_grad():
        weight = model[0].weight
        weight.mul_(4.0)
        if spec["sparsity"]:
            weight[torch.rand_like(weight) < spec["sparsity"]] = 0.0
    x = torch.rand(16, spec["n_in"]) * 2 - 1
    xf, wf = spec["x_width"] // 2, spec["w_width"] - 2
    quant = {"data_in_width": spec["x_width"], "data_in_frac_width": xf, "weight_width": spec["w_width"],
             "weight_frac_width": wf, "bias_width": 8, "bias_frac_width": 4, "data_out_width": 8,
             "data_out_frac_width": 3}
    table = {"in_par": spec["in_par"], "out_par": spec["out_par"],
             "multiplier": "lut" if spec["style"] == "lut" else "dsp"}
    return flow.compile(model, x[:2], quant=quant, parallelism={"default": table}, name="sweep"), x


def measure(spec: dict) -> list[dict]:
    design, x = build(spec)
    return instance_rows(design, x, spec["index"])


def instance_rows(design, x: torch.Tensor, index: int) -> list[dict]:
    """Emit and synthesize ``design``: a row per stage instance (its kind, features, modelled DSPs
    and measured counts), and one for what the top holds outside them."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sweep"
        design.emit(folder, x)
        files, top = design_sources(folder)
        start = time.perf_counter()
        synthesized = synth_xc7(files, top, 1800.0, Path(tmp))
    rows = []
    for position, stage in enumerate(design.graph.stages):
        name = stage_instance(position, stage)
        counts = synthesized["layers"].get(name)
        if counts is None:
            continue
        rows.append({"design": index, "instance": name, "kind": stage_kind(stage),
                     "features": stage_features(stage), "dsp_model": dsp_count(stage),
                     "LUT": counts["LUT"], "FF": counts["FF"], "DSP48E1": counts["DSP48E1"]})
    glue = {key: synthesized["total"][key] - sum(r[key] for r in rows) for key in ("LUT", "FF", "DSP48E1")}
    rows.append({"design": index, "instance": "top", "kind": "top", "features": {"one": 1.0},
                 "dsp_model": 0, **glue})
    for row in rows:
        row["synth_seconds"] = round(time.perf_counter() - start, 1)
    return rows


def describe(spec: dict) -> str:
    """One line naming a sweep design's shape, styles and formats."""
    if spec["style"] == "multi":
        return f"{spec['kind']} {spec['in_features']}" + "".join(
            f" -> {x['n_out']} {x['style']} par {x['in_par']}x{x['out_par']}" for x in spec["layers"])
    return (f"{spec['style']} {spec['n_in']}x{spec['n_out']} x{spec['x_width']} w{spec['w_width']} "
            f"par {spec['in_par']}x{spec['out_par']} sparsity {spec['sparsity']}")


def featurize(data: dict) -> None:
    """Recompute every row's features and DSP count from its design (rebuilt from its spec, no
    synthesis), so a change to the model's features refits without synthesizing again."""
    specs = {s["index"]: s for s in data["specs"]}
    for index, spec in specs.items():
        design, _ = build(spec)
        by_name = {stage_instance(i, st): st for i, st in enumerate(design.graph.stages)}
        for row in data["rows"]:
            if row["design"] == index and row["instance"] in by_name:
                stage = by_name[row["instance"]]
                row.update(kind=stage_kind(stage), features=stage_features(stage), dsp_model=dsp_count(stage))


def fit(rows: list[dict]) -> dict:
    """Non-negative least squares per stage kind and resource, on relative error (rows weighted by
    1 / max(count, 8)) so small stages count as much as big ones; the LUT fit leaves out the
    register-only features (FF_ONLY_FEATURES), and the FF fit takes the exactly known register
    bits (EXACT_FF_FEATURES, one FF each) off the count before fitting the rest."""
    coefficients: dict = {}
    for kind in sorted({r["kind"] for r in rows}):
        subset = [r for r in rows if r["kind"] == kind]
        names = sorted({n for r in subset for n in r["features"]})
        a = np.array([[r["features"].get(n, 0.0) for n in names] for r in subset])
        coefficients[kind] = {}
        exact = np.array([sum(v for n, v in r["features"].items() if n in EXACT_FF_FEATURES) for r in subset])
        for resource in RESOURCES:
            y = np.array([float(r[resource]) for r in subset])
            scale = 1.0 / np.maximum(y, 8.0)
            used = np.array([n not in EXACT_FF_FEATURES and (resource == "FF" or n not in FF_ONLY_FEATURES)
                             for n in names], dtype=float)
            target = y - exact if resource == "FF" else y  # exact register bits are counted, not fitted
            solution, _ = nnls(a * used[None, :] * scale[:, None], target * scale)
            coefficients[kind][resource] = {n: float(c) for n, c in zip(names, solution) if c > 0}
    return coefficients


def design_errors(rows: list[dict], calibration: Calibration) -> dict:
    """Per held-out design: relative LUT and FF error of the total; whether the DSP count is exact."""
    out = {"LUT": [], "FF": [], "DSP_exact": []}
    for design in sorted({r["design"] for r in rows}):
        parts = [r for r in rows if r["design"] == design]
        for resource in RESOURCES:
            true = sum(r[resource] for r in parts)
            predicted = sum(calibration.predict(r["kind"], resource, r["features"]) for r in parts)
            out[resource].append(abs(predicted - true) / max(true, 1))
        out["DSP_exact"].append(sum(r["dsp_model"] for r in parts) == sum(r["DSP48E1"] for r in parts))
    return out


def summary(errors: dict) -> dict:
    return {"designs": len(errors["LUT"]),
            "LUT": {"median": statistics.median(errors["LUT"]), "worst": max(errors["LUT"])},
            "FF": {"median": statistics.median(errors["FF"]), "worst": max(errors["FF"])},
            "DSP_exact": sum(errors["DSP_exact"]) / len(errors["DSP_exact"])}


def split_summary(rows: list[dict], calibration: Calibration) -> dict:
    """``summary`` of the single-layer and of the multi-layer designs among ``rows``, apart."""
    parts = {"single_layer": [r for r in rows if r["design"] < MULTI_START],
             "multi_layer": [r for r in rows if r["design"] >= MULTI_START]}
    return {name: summary(design_errors(part, calibration)) for name, part in parts.items() if part}


def remeasured(specs: list[dict], names: list[str]) -> set[int]:
    """Indices of the stored designs to synthesize again: those of each named style, the multi-layer
    designs with a layer of that style (their netlists changed too), and each index named."""
    names = [name.strip() for name in names if name.strip()]
    styles = {name for name in names if not name.isdigit()}
    indices = {int(name) for name in names if name.isdigit()}
    return {s["index"] for s in specs
            if s["index"] in indices or s["style"] in styles
            or any(layer.get("style") in styles for layer in s.get("layers", ()))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", type=int, default=80)
    ap.add_argument("--multi", type=int, default=48, help="multi-layer designs (numbered from 1000)")
    ap.add_argument("--out", default=str(CALIBRATION))
    ap.add_argument("--cluster", default="serial", help="serial (default), local:N or tcp://host:port (flow.cluster)")
    ap.add_argument("--remeasure", default=None, metavar="STYLE[,INDEX...]",
                    help="synthesize again (after their RTL changed) the stored designs of a style, the multi-layer "
                         "ones with a layer of it among them, and any design index given, then refit")
    a = ap.parse_args(argv)
    path = Path(a.out)
    data = json.loads(path.read_text()) if path.exists() else {"specs": [], "rows": []}
    if a.remeasure:
        again = remeasured(data["specs"], a.remeasure.split(","))
        if not again:
            raise SystemExit(f"no stored design matches {a.remeasure!r}; styles: "
                             f"{sorted({s['style'] for s in data['specs']})}")
        data["specs"] = [s for s in data["specs"] if s["index"] not in again]
        data["rows"] = [r for r in data["rows"] if r["design"] not in again]
    done = {s["index"] for s in data["specs"]}
    specs = [draw(index) if index < MULTI_START else draw_multi(index)
             for index in [*range(a.designs), *range(MULTI_START, MULTI_START + a.multi)] if index not in done]
    # Designs are synthesized as independent jobs; the client writes each result once, in index order.
    with open_executor(a.cluster) as executor:
        for spec, rows in zip(specs, executor.map(measure, specs, label=describe)):
            data["specs"] = sorted([*data["specs"], spec], key=lambda s: s["index"])
            data["rows"] += rows
            data["coefficients"] = fit([r for r in data["rows"] if r["design"] % 2 == 0])
            path.write_text(json.dumps(data, indent=1) + "\n")
            print(f"design {spec['index']}: {describe(spec)}: LUT {sum(r['LUT'] for r in rows)} "
                  f"({rows[0]['synth_seconds']} s)", flush=True)
    featurize(data)
    calibration_rows = [r for r in data["rows"] if r["design"] % 2 == 0]
    held_out = [r for r in data["rows"] if r["design"] % 2 == 1]
    data["coefficients"] = fit(calibration_rows)
    calibration = Calibration(data["coefficients"])
    data["held_out"] = split_summary(held_out, calibration)
    data["calibration_fit"] = split_summary(calibration_rows, calibration)
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps({"held_out": data["held_out"], "calibration_fit": data["calibration_fit"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
