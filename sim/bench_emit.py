"""Benchmark (not a test): wall time of emit-rtl (training cached) and of the full-test-set
simulation including an uncached Verilator build. Run with `make bench-emit`."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from flow.design.config import load_config
from flow.design.pipeline import emit_design
from flow.hardware.simulate import simulate_design


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config("configs/digits_mlp.toml", {"design.output_dir": tmp})
        emit_design(config, log=lambda _: None)  # warms the training cache
        start = time.perf_counter()
        result = emit_design(config, log=lambda _: None)
        emit_s = time.perf_counter() - start
        start = time.perf_counter()
        sim = simulate_design(result.folder, log=lambda _: None, build_root=Path(tmp) / "build")
        sim_s = time.perf_counter() - start
    print(f"emit-rtl (training cached): {emit_s:.1f} s   (target < 30 s)")
    print(f"sim, {sim['vectors']} vectors incl. Verilator build: {sim_s:.1f} s "
          f"(build {sim['build_seconds']:.1f} s, simulation {sim['sim_seconds']:.1f} s; target < 60 s), "
          f"{sim['mismatches']} mismatches")


if __name__ == "__main__":
    main()
