"""Benchmark (not a test): the digits MLP of issue 10 (inputs u8.7, weights and biases s8.6, hidden
u8.4, round half up, saturate) at several design points, each emitted, simulated bit-exact on the
whole test split and synthesized with the same flow (`flow estimate`: Yosys xc7 and ECP5, nextpnr-ecp5
Fmax). One table: LUT, FF, DSP, CARRY4, logic depth, ECP5 Fmax, II, latency, vectors per second at
Fmax, and the simulation's speed. `make bench-hw` (`--points` picks some, `--no-pnr` skips Fmax).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from flow.cluster import ClusterError, open_executor
from flow.config.load import flag_overrides, load_config
from flow.design.pipeline import emit_design
from flow.estimate.design import design_sources, estimate_design
from flow.estimate.yosys import synthesize_xilinx
from flow.simulation.simulate import simulate_design

FORMATS = ["--quantization.default.data_in_signed", "false", "--quantization.default.data_in_frac_width", "4",
           "--quantization.fc1.data_in_frac_width", "7",
           "--quantization.default.data_out_signed", "false", "--quantization.default.data_out_frac_width", "4",
           "--quantization.fc3.data_out_signed", "true"]


def parallel(multiplier: str, pipeline_every: int = 0) -> list[str]:
    return ["--parallelism.default.in_par", "full", "--parallelism.default.out_par", "full",
            "--parallelism.fc1.in_par", "full", "--parallelism.fc3.out_par", "full",
            "--parallelism.default.multiplier", multiplier, "--parallelism.default.pipeline_every", str(pipeline_every)]


def folded(fc1_in: int, out: int, fc3_out: int) -> list[str]:
    return ["--parallelism.fc1.in_par", str(fc1_in), "--parallelism.default.out_par", str(out),
            "--parallelism.fc3.out_par", str(fc3_out), "--parallelism.default.multiplier", "dsp"]


POINTS: dict[str, list[str]] = {
    "parallel-lut": parallel("lut"),  # shift-add, no register inside a layer
    "parallel-lut-pe6": parallel("lut", 6),  # a register every 6 adder levels: latency 5, da4ml's
    "parallel-lut-pe2": parallel("lut", 2),  # a register every 2 adder levels
    "parallel-dsp": parallel("dsp"),
    "folded-16x8": folded(16, 8, 10),
    "folded-8x4": folded(8, 4, 5),
    "folded-4x2": folded(4, 2, 2),
    "minimal": folded(1, 1, 1),
}
# issue 19's measurement of da4ml (synth_xilinx -flatten; LUT1-6 30,307 + 954 INV), not rerun here
DA4ML_ISSUE = {"LUT": 31261, "INV": 954, "CARRY4": 6400, "DSP48E1": 0, "FF": 6103, "II": 1, "latency": 5}


def run_peer(out: Path, stages: int, pnr: bool, netlists: Path | None = None, ecp5_timeout: float = 5400) -> dict:
    """da4ml on the same weights (fully parallel, ``stages`` register stages), checked bit-exact
    against flow's reference on the whole test split, through the same Yosys and nextpnr flow. An
    ECP5 synthesis that runs past ``ecp5_timeout`` seconds is recorded as such (``ecp5_error``),
    with the xc7 figures kept."""
    from benches import da4ml_peer
    from flow.data.tabular import load_split
    from flow.design.compile import compile_config
    from flow.design.train import trained_float_model
    from flow.estimate.design import synth_ecp5, synth_xc7, throughput
    from flow.estimate.yosys import YosysError

    config = load_config("configs/digits_mlp.toml", flag_overrides(FORMATS + parallel("lut")))
    d = config.dataset
    data = load_split(d.name, d.path, d.test_fraction, d.seed)
    design = compile_config(trained_float_model(config, data, log=lambda _: None), data.x_test[:2], config)
    codes = design.quantize_inputs(data.x_test)
    folder = out / "da4ml"
    folder.mkdir(parents=True, exist_ok=True)

    def synthesize(files: list[Path], top: str) -> dict:
        xc7 = synth_xc7(files, top, 5400, folder)
        start = time.perf_counter()
        try:
            ecp5 = synth_ecp5(files, top, ecp5_timeout, folder, pnr, 5400)
        except YosysError as error:
            ecp5 = {"total": {"LUT4": None, "CCU2C": None}, "error": str(error),
                    "seconds": round(time.perf_counter() - start, 1)}
        return {"xc7": xc7, "ecp5": ecp5}

    peer = da4ml_peer.run(design.graph, codes, folder, stages, synthesize)
    if netlists is not None and (folder / "ecp5.json").exists():
        shutil.copyfile(folder / "ecp5.json", netlists / "da4ml.json")
    x, e = peer["synthesis"]["xc7"], peer["synthesis"]["ecp5"]
    fmax = e.get("pnr", {}).get("fmax_mhz")
    return {"point": f"da4ml {peer['version']}", "LUT": x["total"]["LUT"], "FF": x["total"]["FF"],
            "DSP": x["total"]["DSP48E1"], "CARRY4": x["total"]["CARRY4"], "BRAM": x["total"]["BRAM"],
            "depth": x["logic_depth"], "ecp5_lut4": e["total"]["LUT4"], "ecp5_ccu2c": e["total"]["CCU2C"],
            "ecp5_error": e.get("error"),
            "INV": x["total"]["INV"], "flat": flat_counts(peer["files"], peer["top"]), "fmax_mhz": fmax,
            "fmax_error": e.get("pnr", {}).get("error"), "II": 1, "latency": peer["register_stages"],
            "vectors_per_s_at_fmax": throughput({"cycles": {"initiation_interval": 1}}, fmax) if fmax else None,
            "mismatches": peer["mismatches"], "sim_vectors_per_s": "(da4ml's interpreter)", "sim_build_s": "",
            "emit_s": peer["build_s"], "synth_s": x["seconds"] + e["seconds"], "pnr_s": e.get("pnr", {}).get("seconds")}


def run_point(name: str, flags: list[str], out: Path, pnr: bool, netlists: Path | None = None) -> dict:
    config = load_config("configs/digits_mlp.toml", flag_overrides(
        ["--design.name", name.replace("-", "_"), "--design.output_dir", str(out)] + FORMATS + flags))
    start = time.perf_counter()
    emitted = emit_design(config, log=lambda _: None)
    emit_s = time.perf_counter() - start
    sim = simulate_design(emitted.folder, log=lambda _: None, build_root=out / "build")
    est = estimate_design(emitted.folder, timeout=5400, pnr=pnr, pnr_timeout=5400, log=lambda _: None,
                          keep_ecp5_netlist=netlists / f"{name}.json" if netlists else None)
    x, e = est["xc7"], est["ecp5"]
    fmax = e.get("pnr", {}).get("fmax_mhz")
    return {"point": name, "LUT": x["total"]["LUT"], "FF": x["total"]["FF"], "DSP": x["total"]["DSP48E1"],
            "CARRY4": x["total"]["CARRY4"], "BRAM": x["total"]["BRAM"], "depth": x["logic_depth"],
            "ecp5_lut4": e["total"]["LUT4"], "ecp5_ccu2c": e["total"]["CCU2C"], "INV": x["total"]["INV"],
            "flat": flat_counts(*design_sources(emitted.folder)) if name.startswith("parallel-lut") else None,
            "fmax_mhz": fmax, "fmax_error": e.get("pnr", {}).get("error"),
            "II": sim["initiation_interval"], "latency": sim["latency_cycles"],
            "vectors_per_s_at_fmax": est.get("vectors_per_second_at_ecp5_fmax"),
            "mismatches": sim["mismatches"], "hw_accuracy": sim["hardware_accuracy"],
            "sim_vectors_per_s": sim["vectors_per_second"], "sim_build_s": sim["build_seconds"],
            "emit_s": round(emit_s, 1), "synth_s": x["seconds"] + e["seconds"],
            "pnr_s": e.get("pnr", {}).get("seconds")}


def flat_counts(files: list[Path], top: str) -> dict[str, int]:
    """The same synth_xilinx flattened (``-flatten``): LUT (INV included) and INV."""
    counts = synthesize_xilinx(files, top, timeout=5400)
    return {"LUT": counts["LUT"], "INV": counts["INV"], "CARRY4": counts["CARRY4"], "FF": counts["FF"]}


def _ecp5(row: dict) -> int | None:
    """ECP5 LUT4 + CCU2C, or None where the synthesis did not finish."""
    return None if row["ecp5_lut4"] is None else row["ecp5_lut4"] + row["ecp5_ccu2c"]


def _number(value: object) -> str:
    return f"{value:,}" if isinstance(value, (int, float)) else str(value)


def table(rows: list[dict]) -> str:
    lines = ["| point | LUT (INV incl.) | INV | flattened LUT (INV) | FF | DSP | CARRY4 | ECP5 LUT4 + CCU2C | logic depth | "
             "ECP5 Fmax (MHz) | II | latency | vectors/s at Fmax | LUT+DSP vs parallel-lut | mismatches | "
             "sim vectors/s (build s) |",
             "|---" * 16 + "|"]
    base = next((r for r in rows if r["point"] == "parallel-lut"), None)
    for r in rows:
        ratio = f"{(r['LUT'] + r['DSP']) / (base['LUT'] + base['DSP']):.2f}" if base else ""
        fmax = (f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else
                 "not placed" if r.get("pnr_s") is None else "did not fit/route")
        vps = f"{r['vectors_per_s_at_fmax']:,.0f}" if r["vectors_per_s_at_fmax"] else ""
        flat = f"{r['flat']['LUT']:,} ({r['flat']['INV']:,})" if r.get("flat") else ""
        lines.append(f"| {r['point']} | {r['LUT']:,} | {r['INV']:,} | {flat} | {r['FF']:,} | {r['DSP']} | {r['CARRY4']:,} | "
                     f"{_number(_ecp5(r)) if _ecp5(r) is not None else r.get('ecp5_error')} | {r['depth']} | "
                     f"{fmax} | {r['II']} | {r['latency']} | {vps} | {ratio} | {r['mismatches']} | "
                     f"{_number(r['sim_vectors_per_s'])} ({r['sim_build_s']}) |")
    peer = next((r for r in rows if r["point"].startswith("da4ml")), None)
    if peer:
        lines.append("")
        lines += [f"{r['point']}: LUT (INV included) {r['LUT'] / peer['LUT']:.3f}x {peer['point']} hierarchical"
                  + (f", {r['flat']['LUT'] / peer['flat']['LUT']:.3f}x flattened" if r.get("flat") else "")
                  + (f", ECP5 LUT4 + CCU2C {_ecp5(r) / _ecp5(peer):.3f}x" if _ecp5(peer) else
                     f", ECP5 LUT4 + CCU2C {_ecp5(r):,} (da4ml's: {peer.get('ecp5_error')})")
                  + f", at latency {r['latency']} (da4ml {peer['latency']}), logic depth {r['depth']} (da4ml {peer['depth']})"
                  for r in rows if r["point"].startswith("parallel-lut")]
    else:
        d = DA4ML_ISSUE
        lines.append(f"| da4ml 0.6.0 (issue 19's flattened figures; not run here: da4ml not installed or --da4ml-stages 0) "
                     f"| | {d['INV']:,} | {d['LUT']:,} ({d['INV']:,}) | {d['FF']:,} | {d['DSP48E1']} | {d['CARRY4']:,} | | | | "
                     f"{d['II']} | {d['latency']} | | | | |")
        lines += ["", *(f"{r['point']}: flattened LUT (INV included) {r['flat']['LUT'] / d['LUT']:.3f}x da4ml's in issue 19 "
                        f"(not the same run)" for r in rows if r.get("flat"))]
    return "\n".join(lines)


@dataclass(frozen=True)
class PointJob:
    """One row of the table as an executor job: a design point, or the da4ml peer (``stages`` > 0)."""

    name: str
    folder: Path
    pnr: bool
    netlists: Path | None
    stages: int = 0
    ecp5_timeout: float = 5400


def run_job(job: PointJob) -> dict:
    if job.stages:
        return run_peer(job.folder, job.stages, job.pnr, job.netlists, job.ecp5_timeout)
    return run_point(job.name, POINTS[job.name], job.folder, job.pnr, job.netlists)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", default=",".join(POINTS), help=f"comma-separated, of {', '.join(POINTS)}")
    ap.add_argument("--no-pnr", action="store_true", help="skip nextpnr (no Fmax)")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    ap.add_argument("--pnr-points", default=",".join(p for p in POINTS if not p.startswith("parallel")),
                    help="comma-separated points to place and route, or 'all' ('da4ml' names the peer). Default: the "
                         "folded ones; nextpnr-ecp5 (WebAssembly) had not routed a fully parallel point after 530 s")
    ap.add_argument("--netlists", default=None, help="keep each point's ECP5 netlist here (to place and route elsewhere)")
    ap.add_argument("--cluster", default=None, help="points as jobs on a Dask cluster: local:N or tcp://host:port "
                                                    "(default: one after another here; timings then share cores)")
    ap.add_argument("--da4ml-stages", type=int, default=5,
                    help="register stages of the da4ml peer (run when da4ml is installed; 0 skips it)")
    ap.add_argument("--da4ml-ecp5-timeout", type=float, default=5400,
                    help="seconds da4ml's ECP5 synthesis may take; past them the row records that it did not finish")
    a = ap.parse_args(argv)
    names = [p.strip() for p in a.points.split(",") if p.strip()]
    unknown = [p for p in names if p not in POINTS]
    if unknown:
        ap.error(f"unknown point(s) {unknown}; use {', '.join(POINTS)}")
    rows: list[dict] = []

    def keep(row: dict) -> None:
        """Print a finished row and store every row so far: a long run killed midway keeps its points."""
        rows.append(row)
        print(f"{row['point']}: {json.dumps(row)}", flush=True)
        if a.json:
            Path(a.json).write_text(json.dumps(rows, indent=2) + "\n")

    routed = set(POINTS) | {"da4ml"} if a.pnr_points == "all" else {p.strip() for p in a.pnr_points.split(",") if p.strip()}
    if routed - set(POINTS) - {"da4ml"}:
        ap.error(f"unknown --pnr-points {sorted(routed - set(POINTS) - {'da4ml'})}; use 'all', 'da4ml' or "
                 f"{', '.join(POINTS)}")
    netlists = Path(a.netlists) if a.netlists else None
    if netlists:
        netlists.mkdir(parents=True, exist_ok=True)
    from benches.da4ml_peer import available

    with tempfile.TemporaryDirectory() as tmp:
        jobs = [PointJob(name, Path(tmp), not a.no_pnr and name in routed, netlists) for name in names]
        if a.da4ml_stages and available():
            jobs.append(PointJob("da4ml", Path(tmp), not a.no_pnr and "da4ml" in routed, netlists, a.da4ml_stages,
                                 a.da4ml_ecp5_timeout))
        try:
            with open_executor(a.cluster) as executor:
                for row in executor.map(run_job, jobs, label=lambda job: job.name):
                    keep(row)
        except ClusterError as error:
            print(f"bench_hw: {error}", file=sys.stderr)
            return 2
    print(table(rows))
    if a.json:
        Path(a.json).with_suffix(".md").write_text(table(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
