"""bert-tiny in hardware at three parallelism points (issue 23): minimal (one element a beat), folded
(configs/bert_tiny.toml: 8 a beat) and the widest this machine's tools take, each with the cycle model's
II and latency and the analytical estimator's LUT, FF and DSP48E1 (flow.estimate.model); with
``--yosys`` each point's RTL is also synthesized (xc7, and ECP5 with ``--ecp5``) module by module
(flow.estimate.per_module: one design is too large for one Yosys run on this machine), each distinct
module under its own timeout and cached in <out>/.synth_cache, the total a per-module sum.

``python -m benches.bert_points [--yosys [--ecp5] [--reuse]] [--timeout 600] [--bert.seq 128 ...]``
writes results/bert_rtl/design_points.json (config flags as for emit-rtl).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from flow.config.load import flag_overrides, load_config
from flow.estimate.model import estimate
from flow.labs.bert_rtl import BertBody, base_model, compile_bert
from flow.paths import current_commit

#: point -> (elements a beat of every layer's output, of the first Linears' input); "full": a whole vector
POINTS: dict[str, dict[str, Any]] = {
    "minimal": {"out_par": 1, "in_par": 1},
    "folded": {"out_par": 8, "in_par": 8},
    "parallel": {"out_par": 32, "in_par": 32},
}


def point_config(config, par: dict[str, Any], name: str):
    """The config with every layer's out_par (the classifier's at most its 2 logits) and the input's in_par."""
    tables = config.parallelism
    tables = dataclasses.replace(tables, default=dataclasses.replace(tables.default, out_par=par["out_par"]))
    # a layer's own table holds the default it was parsed over: set its out_par too
    tables = tables.with_layer("encoder.layer.0.attention.self.query", in_par=par["in_par"], out_par=par["out_par"])
    tables = tables.with_layer("classifier", out_par=min(2, par["out_par"]) if par["out_par"] != "full" else "full")
    return dataclasses.replace(config, parallelism=tables).with_name(name)


def synthesize(folder: Path, targets: tuple[str, ...], timeout: float, est: dict[str, Any],
               budget: float | None = None) -> dict[str, Any]:
    """Per-module synthesis of an emitted point; each target's total with its ratio to the estimator's
    figure (xc7) and its cold wall time (every module's synthesis, cached or not, plus elaboration)."""
    from flow.estimate.per_module import METHOD, estimate_per_module
    from flow.estimate.yosys import YosysError

    start = time.perf_counter()
    try:
        synth = estimate_per_module(folder, targets, timeout, cache=folder.parent / ".synth_cache", budget=budget)
    except YosysError as error:  # elaboration itself failed or ran out of time: say so in the record
        return {"method": METHOD, "error": f"elaboration: {error}", "seconds": round(time.perf_counter() - start, 1)}
    out: dict[str, Any] = {"method": METHOD, "elaborate_seconds": synth["elaborate_seconds"]}
    for target in targets:
        t = synth[target]
        out[target] = {**t, "cold_seconds": round(synth["elaborate_seconds"] + sum(
            u["seconds"] for u in t["units"].values()), 1)}
        if target == "xc7":
            out[target]["ratio_to_estimate"] = {k: round(t["total"][k] / est["total"][k], 3) if est["total"].get(k)
                                                else None for k in ("LUT", "FF", "DSP48E1")}
            out[target]["by_module"] = by_module(t["units"], est["stages"])
    return out


def by_module(units: dict[str, Any], stages: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Synthesized and estimated LUT, FF and DSP48E1 summed by library module (linear, matmul, ...):
    where the estimator and synthesis part (modules that failed count on neither side)."""
    rows: dict[str, dict[str, int]] = {}
    for unit in units.values():
        if "each" not in unit or unit["instances"] == ["(top)"]:
            continue
        row = rows.setdefault(unit["module"], {"instances": 0, **{f"{k}{s}": 0 for k in ("LUT", "FF", "DSP48E1")
                                                                  for s in ("", "_est")}})
        row["instances"] += unit["count"]
        for key in ("LUT", "FF", "DSP48E1"):
            row[key] += unit["each"][key] * unit["count"]
            row[f"{key}_est"] += sum(stages.get(name, {}).get(key, 0) for name in unit["instances"])
    return dict(sorted(rows.items(), key=lambda kv: -kv[1]["LUT_est"]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benches.bert_points", description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/bert_tiny.toml")
    ap.add_argument("--points", default=",".join(POINTS))
    ap.add_argument("--json", default="results/bert_rtl/design_points.json")
    ap.add_argument("--yosys", action="store_true", help="also emit each point and synthesize it (xc7)")
    ap.add_argument("--ecp5", action="store_true", help="with --yosys: ECP5 too")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per module's Yosys run")
    ap.add_argument("--out", default="hw/gen", help="where --yosys emits the points")
    ap.add_argument("--reuse", action="store_true", help="with --yosys: synthesize a point already emitted there")
    ap.add_argument("--budget", type=float, default=None,
                    help="with --yosys: seconds for each point's synthesis; modules not started by then are recorded")
    a, extra = ap.parse_known_args(argv)
    torch.set_num_threads(1)
    config = load_config(a.config, flag_overrides(extra))
    base = base_model(config, progress=False)
    body = BertBody(base.model).eval()
    path = Path(a.json)
    record = json.loads(path.read_text()) if path.exists() else {"points": {}}
    record.update(config=a.config, model={k: base.info[k] for k in ("kind", "weights", "reason")},
                  seq=config.bert.seq, estimator="flow.estimate.model (analytical, xc7 LUT/FF/DSP48E1; no BRAM)")
    if a.yosys:
        record["yosys"] = ("flow.estimate.per_module: each distinct module the top instantiates synthesized in its own "
                           "Yosys run (flow estimate's commands), summed per instance (no cross-module optimization); "
                           "a point without a 'yosys' entry was not synthesized")
    for point in a.points.split(","):
        start = time.perf_counter()
        design = compile_bert(body, point_config(config, POINTS[point], f"bert_tiny_{point}"), config.bert.seq)
        est = estimate(design.graph)
        row = {**record["points"].get(point, {}), "parallelism": POINTS[point],
               "initiation_interval": design.initiation_interval,
               "initiation_interval_max": design.initiation_interval_max, "latency": design.latency,
               "estimate": est["total"], "stages": len(design.graph.stages), "commit": current_commit()}
        if a.yosys:
            folder = Path(a.out) / f"bert_tiny_{point}"
            if not (a.reuse and (folder / "report.json").exists()):
                design.emit(folder, torch.zeros(1, config.bert.seq,
                                                body.encoder.layer[0].attention.self.query.in_features))
            row["yosys"] = synthesize(folder, ("xc7", "ecp5") if a.ecp5 else ("xc7",), a.timeout, est, a.budget)
        row["seconds"] = round(time.perf_counter() - start, 1)
        record["points"][point] = row
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(point, json.dumps({k: row[k] for k in ("initiation_interval", "latency", "estimate")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
