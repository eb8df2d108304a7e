"""Benchmark (not a test): wall time of `flow emit-rtl` (a fresh process, training cached) and of
`flow sim` on the full test split including an uncached Verilator build. Run with `make bench-emit`."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flow.simulation.simulate import simulate_design


def emit(output_dir: str) -> float:
    """Seconds for one `flow emit-rtl` process, imports included."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flow.cli", "emit-rtl", "--config", "configs/digits_mlp.toml",
                    "--design.output_dir", output_dir], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        emit(tmp)  # warms the training cache
        emit_s = emit(tmp)
        report = json.loads((Path(tmp) / "digits_mlp" / "report.json").read_text())
        start = time.perf_counter()
        sim = simulate_design(Path(tmp) / "digits_mlp", log=lambda _: None, build_root=Path(tmp) / "build")
        sim_s = time.perf_counter() - start
    print(f"flow emit-rtl, training cached: {emit_s:.1f} s wall (of which the pipeline itself "
          f"{report['emit_seconds']:.1f} s; the rest is starting Python and importing torch); target < 30 s")
    print(f"flow sim, {sim['vectors']} vectors incl. an uncached Verilator build: {sim_s:.1f} s "
          f"(build {sim['build_seconds']:.1f} s, simulation {sim['sim_seconds']:.1f} s); target < 60 s; "
          f"{sim['mismatches']} mismatches")


if __name__ == "__main__":
    main()
