"""Acceptance matrix (not a test): emit and simulate design variants on the whole test split.

Each variant must show zero mismatches and hardware accuracy equal to the quantized model's.
Writes results/emit/variants.json and prints a table. Run with `make verify-designs`.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from flow.cluster import ClusterError, open_executor
from flow.config.load import load_config
from flow.design.pipeline import emit_design
from flow.simulation.simulate import simulate_design

CONFIG = Path("configs/digits_mlp.toml")
FULL = {"parallelism.default.out_par": "full", "parallelism.fc1.in_par": "full",
        "parallelism.fc3.out_par": "full"}
VARIANTS: dict[str, dict] = {
    "default": {},
    "fully_parallel": FULL,
    "folded": {"parallelism.fc1.in_par": 4, "parallelism.default.out_par": 2,
               "parallelism.fc3.out_par": 2},
    "mixed_precision": {"quantization.fc1.weight_width": 6, "quantization.fc1.weight_frac_width": 5,
                        "quantization.fc2.data_in_width": 6, "quantization.fc2.data_in_frac_width": 2,
                        "quantization.fc2.weight_width": 4, "quantization.fc2.weight_frac_width": 3,
                        "quantization.fc3.data_in_width": 10, "quantization.fc3.data_in_frac_width": 4,
                        "quantization.fc3.data_out_width": 12, "quantization.fc3.data_out_frac_width": 6},
    "floor": {"quantization.default.rounding": "floor"},
    "half_up": {"quantization.default.rounding": "half_up"},
    "half_even": {"quantization.default.rounding": "half_even"},
    "wrap": {"quantization.default.overflow": "wrap"},
    "leaky_relu": {"model.activation": "leaky_relu"},
}


def verify_variant(name: str) -> dict:
    """Emit and simulate one variant in a folder of its own: an executor job."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(CONFIG, {"design.output_dir": tmp, "design.name": f"variant_{name}", **VARIANTS[name]})
        result = emit_design(config, str(CONFIG), log=lambda _: None)
        sim = simulate_design(result.folder, log=lambda _: None)
    acc = result.report["accuracy"]
    return {
        "variant": name, "overrides": VARIANTS[name], "vectors": sim["vectors"],
        "mismatches": sim["mismatches"], "elements_compared": sim["elements_compared"],
        "float": acc["float"], "quantized": acc["quantized"],
        "hardware_sim": sim["hardware_accuracy"], "hardware_correct": sim["hardware_correct"],
        "reference_correct": sim["reference_correct"],
        "ii": sim["initiation_interval"], "latency": sim["latency_cycles"],
        "latency_model": result.report["cycles"]["latency_estimate"],
        "stages": [r["kind"] for r in result.report["stages"]],
        "build_s": sim["build_seconds"], "sim_s": sim["sim_seconds"],
        "total_s": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("results/emit/variants.json"))
    parser.add_argument("--cluster", default=None, help="variants as jobs on a Dask cluster: local:N or "
                                                        "tcp://host:port (default: one after another here)")
    args = parser.parse_args()
    rows = []
    try:
        with open_executor(args.cluster) as executor:
            for r in executor.map(verify_variant, args.only):
                rows.append(r)
                print(f"{r['variant']:16} mismatches {r['mismatches']:>3} / {r['elements_compared']} elements  "
                      f"quantized {r['quantized']:.4f} hardware {r['hardware_sim']:.4f}  "
                      f"II {r['ii']:>3} latency {r['latency']:>3} (model {r['latency_model']})  "
                      f"build {r['build_s']:.1f} s sim {r['sim_s']:.1f} s", flush=True)
    except ClusterError as error:
        raise SystemExit(f"verify_designs: {error}") from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    bad = [r["variant"] for r in rows if r["mismatches"] or r["hardware_correct"] != r["reference_correct"]]
    print("all variants bit-exact" if not bad else f"FAILED: {bad}")
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
