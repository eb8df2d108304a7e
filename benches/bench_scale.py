"""Benchmark (not a test): designs at scale emit, build and simulate bit-exact, and how long each
step takes. (1) the digits MLP widened to 64-256-128-10, fully parallel with shift-add constants;
(2) one folded 768 -> 768 layer (BERT-base's size) at parallelism 16 x 16, with the block RAMs Yosys
infers for its weight ROM. `python -m benches.bench_scale [--synth]`.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import flow
from flow.config.load import flag_overrides, load_config
from flow.design.pipeline import emit_design
from flow.estimate.design import estimate_design
from flow.simulation.simulate import simulate_design


def wide_mlp(out: Path) -> dict:
    flags = ["--design.name", "wide_mlp", "--design.output_dir", str(out), "--model.hidden", "[256, 128]",
             "--parallelism.default.in_par", "full", "--parallelism.default.out_par", "full",
             "--parallelism.fc1.in_par", "full", "--parallelism.fc3.out_par", "full",
             "--parallelism.default.multiplier", "lut"]
    config = load_config("configs/digits_mlp.toml", flag_overrides(flags))
    start = time.perf_counter()
    emitted = emit_design(config, log=lambda _: None)
    emit_s = time.perf_counter() - start
    return {"emit_s": round(emit_s, 1), "folder": emitted.folder, "weights": 64 * 256 + 256 * 128 + 128 * 10}


def folded_768(out: Path) -> dict:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(768, 768))
    x = torch.randn(200, 768)
    design = flow.compile(model, x[:2], quant={"data_in_width": 8, "data_in_frac_width": 5},
                          parallelism={"default": {"in_par": 16, "out_par": 16}}, name="folded_768")
    start = time.perf_counter()
    design.emit(out / "folded_768", x)
    return {"emit_s": round(time.perf_counter() - start, 1), "folder": out / "folded_768", "weights": 768 * 768}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synth", action="store_true", help="also synthesize (xc7): block RAMs of the folded layer")
    ap.add_argument("--only", choices=("wide", "folded"), default=None)
    a = ap.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for name, make in (("wide 64-256-128-10, fully parallel shift-add", wide_mlp),
                           ("folded 768->768 at 16x16", folded_768)):
            if a.only and not name.startswith(a.only):
                continue
            row = make(out)
            sim = simulate_design(row["folder"], log=lambda _: None, build_root=out / "build")
            row.update(build_s=sim["build_seconds"], sim_s=sim["sim_seconds"], vectors=sim["vectors"],
                       mismatches=sim["mismatches"], vectors_per_s=sim["vectors_per_second"],
                       ii=sim["initiation_interval"], latency=sim["latency_cycles"])
            if a.synth:
                start = time.perf_counter()
                synth = estimate_design(row["folder"], ("xc7",), timeout=7200, pnr=False, log=lambda _: None)["xc7"]
                row.update(synth_s=round(time.perf_counter() - start, 1), resources=synth["total"])
            row["folder"] = str(row["folder"])
            rows[name] = row
            print(f"{name}: {json.dumps(row)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
