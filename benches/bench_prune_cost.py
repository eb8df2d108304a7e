"""What pruning saves in fully parallel hardware: Yosys synth_xilinx cells of one MLP at several
weight sparsities, with DSP multipliers and with shift-add constants (`multiplier = "lut"`).

    python -m benches.bench_prune_cost [--sizes 64 16 10] [--sparsities 0 0.5 0.9]

Ratios are against the dense design of the same multiplier style, synthesized in the same run.
"""
from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn

import flow
from flow.passes import make_permanent, prune_module


def mlp(sizes: list[int]) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).eval()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 16, 10])
    ap.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.5, 0.9])
    a = ap.parse_args(argv)
    base = mlp(a.sizes)
    x = torch.randn(2, a.sizes[0])
    print(f"MLP {'-'.join(map(str, a.sizes))}, fully parallel, fixed s8.4 data / s8.6 weights, l1 pruning (local)")
    print("| multiplier | sparsity | zero weights | LUT | FF | DSP | CARRY4 | LUT vs dense | synth s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for style in ("dsp", "lut"):
        dense_lut = None
        for sparsity in a.sparsities:
            model = copy.deepcopy(base)
            if sparsity:
                prune_module(model, sparsity, method="l1", scope="local")
                make_permanent(model)
            design = flow.compile(model, x, parallelism={"default": {"multiplier": style}},
                                  name=f"prune_{style}_{int(sparsity * 100)}")
            zeros = sum(int((s.layer.weight_codes() == 0).sum()) for s in design.graph.linear_stages)
            start = time.perf_counter()
            cells = design.estimate()
            seconds = time.perf_counter() - start
            lut = cells.get("LUT", 0)
            dense_lut = dense_lut or lut
            print(f"| {style} | {sparsity:.1f} | {zeros} | {lut} | {cells.get('FF', 0)} | {cells.get('DSP48E1', 0)} | "
                  f"{cells.get('CARRY4', 0)} | {lut / dense_lut:.2f} | {seconds:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
