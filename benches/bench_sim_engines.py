"""Benchmark (not a test): `flow sim`'s two engines on the digits designs, measured in one run.

For the default digits design (folded, II 16) and its fully parallel variant (II 1), each engine
builds into a fresh folder (Verilator's runtime objects come from flow's object cache, as after
any first use; set FLOW_BUILD_DIR to an empty folder for a cold cache), then simulates the whole
test split `--repeats` times with the same seed, 30 % valid gaps and 30 % backpressure. Prints
build seconds, the median simulation wall time and CPU time, vectors per second (wall, the
figure sim_report.json records) and the ratio bulk/cocotb.

    .venv/bin/python -m benches.bench_sim_engines [--repeats 5] [--designs default parallel]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from flow.simulation.simulate import simulate_design

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "digits_mlp.toml"
DESIGNS = {
    "default": [],
    "parallel": ["--parallelism.fc1.in_par", "64", "--parallelism.fc1.out_par", "32",
                 "--parallelism.fc2.out_par", "16", "--parallelism.fc3.out_par", "10"],
}
ENGINES = ("cocotb", "bulk")


def emit(name: str, flags: list[str], output_dir: Path) -> Path:
    subprocess.run([sys.executable, "-m", "flow.cli", "emit-rtl", "--config", str(CONFIG), "--design.name", name,
                    "--design.output_dir", str(output_dir), *flags], check=True, capture_output=True)
    return output_dir / name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="simulations per engine and design (median)")
    parser.add_argument("--designs", nargs="+", choices=list(DESIGNS), default=list(DESIGNS))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"{'design':9} {'engine':7} {'II':>3} {'vectors':>7} {'build s':>8} {'sim s':>8} {'cpu s':>7} "
          f"{'vectors/s':>10} {'mismatches':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for design in args.designs:
            folder = emit(f"bench_{design}", DESIGNS[design], Path(tmp) / "designs")
            rates = {}
            for engine in ENGINES:
                builds = Path(tmp) / f"build_{design}_{engine}"
                runs = [simulate_design(folder, seed=args.seed, gap=0.3, stall=0.3, log=lambda _: None,
                                        build_root=builds, engine=engine) for _ in range(args.repeats)]
                built = runs[0]
                wall = statistics.median(r["sim_seconds"] for r in runs)
                cpu = statistics.median(r["sim_cpu_seconds"] for r in runs)
                rates[engine] = built["vectors"] / wall
                print(f"{design:9} {engine:7} {built['initiation_interval']:>3} {built['vectors']:>7} "
                      f"{built['build_seconds']:>8.1f} {wall:>8.4f} {cpu:>7.4f} {rates[engine]:>10,.0f} "
                      f"{sum(r['mismatches'] for r in runs):>10}")
            print(f"{design:9} bulk/cocotb: {rates['bulk'] / rates['cocotb']:,.0f}x vectors per second")


if __name__ == "__main__":
    main()
