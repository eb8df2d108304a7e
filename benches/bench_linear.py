"""Benchmark (not a test): Verilator simulation throughput of a 64x32 linear layer.

Prints, for full and folded parallelism, the build time (uncached, fresh build folder), the
simulation wall time and the throughput in input beats and vectors per wall-clock second.
Run with `make bench-sim`.
"""
from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import torch

from flow.formats.fixed import FixedFormat
from flow.nn import LinearQuantConfig
from flow.simulation.stimulus import library_sources, linear_parameters, random_codes, random_layer, to_unsigned
from flow.simulation.verilator import build, run_stream

CASES = [("full", 64, 32), ("folded", 8, 4)]  # (name, IN_PAR, OUT_PAR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(0)
    config = LinearQuantConfig(FixedFormat(8, 4), FixedFormat(8, 4), FixedFormat(8, 4), FixedFormat(8, 4))
    layer = random_layer(64, 32, config, rng)
    x = torch.tensor(random_codes(config.data_in, 64 * args.vectors, rng)).view(args.vectors, 64)
    expected = layer.forward_codes(x).flatten().tolist()
    print(f"linear 64x32, 8-bit, {args.vectors} vectors, Verilator via cocotb (two phases: clean + random stalls)")
    print(f"{'case':8} {'IN_PARxOUT_PAR':>14} {'II':>5} {'build s':>8} {'sim s':>7} {'in beats/s':>11} {'vectors/s':>10} {'mismatches':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, in_par, out_par in CASES:
            built = build("linear", library_sources(), linear_parameters(layer, in_par, out_par),
                          build_root=Path(tmp) / "build")
            spec = dict(in_width=8, out_width=8, out_par=out_par, vectors=args.vectors,
                        inputs=to_unsigned(x.flatten().tolist(), 8), expected=to_unsigned(expected, 8),
                        seed=1, cycles_per_vector=(64 // in_par) * (32 // out_par))
            results = run_stream(built, spec, Path(tmp) / name)
            beats = results["in_beats"] + 8 * 64 // in_par  # random phase plus the clean phase
            vectors = args.vectors + 8
            print(f"{name:8} {f'{in_par}x{out_par}':>14} {results['initiation_interval']:>5} "
                  f"{built.seconds:8.1f} {results['sim_seconds']:7.1f} {beats / results['sim_seconds']:11.0f} "
                  f"{vectors / results['sim_seconds']:10.0f} {results['mismatches']:>10}")


if __name__ == "__main__":
    main()
