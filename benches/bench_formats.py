"""Training-step time with each number format fake-quantizing bert-tiny's Linear layers (inputs,
weights and biases), against float, all in one run. `make bench-formats`.

Fake quantization should not make a lab impractical: the target is at most 1.5x float per
step. Ratios are against the float step measured in the same process (medians of --steps).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from flow.labs.common import run_metadata, write_json
from flow.models.bert import build_bert
from flow.passes import quantize_module

TARGET = 1.5  # at most this many times the float step


def operands(**keys: object) -> dict[str, object]:
    """The same keys for data_in, weight and bias."""
    return {f"{operand}_{key}": value for operand in ("data_in", "weight", "bias") for key, value in keys.items()}


FORMATS: dict[str, dict[str, object]] = {
    "fixed 8.4": {"name": "fixed", **operands(width=8, frac_width=4)},
    "minifloat e4m3": {"name": "minifloat", **operands(width=8, exponent_width=4)},
    "log 8": {"name": "log", **operands(width=8)},
    "block_fp (MXINT8, block 32)": {"name": "mxint", **operands(width=8, block_size=32)},
    "block_minifloat (MXFP8 E4M3, block 32)": {"name": "mxfp", **operands(width=8, exponent_width=4, block_size=32)},
    "block_log 8 (block 32)": {"name": "block_log", **operands(width=8, block_size=32)},
    "binary (scaled)": {"name": "binary", **operands(scaled=True)},
    "ternary": {"name": "ternary", **operands(threshold_factor=0.7)},
}


def step_times(model: torch.nn.Module, batch: dict[str, torch.Tensor], steps: int) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()
    times = []
    for index in range(steps + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
        if index:  # the first step warms caches up
            times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="results/bench/formats.json", help="results JSON (the LOGBOOK's table)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    base, _ = build_bert(False)
    batch = {"input_ids": torch.randint(5, 30000, (a.batch, a.length)),
             "attention_mask": torch.ones(a.batch, a.length, dtype=torch.long),
             "labels": torch.randint(0, 2, (a.batch,))}
    float_ms = statistics.median(step_times(copy.deepcopy(base), batch, a.steps)) * 1e3
    print(f"bert-tiny training step, batch {a.batch} x {a.length} tokens, {a.threads} thread(s), "
          f"median of {a.steps} steps; every Linear's input, weight and bias fake-quantized")
    print("| format | ms per step | vs float | within 1.5x |")
    print("|---|---|---|---|")
    print(f"| float | {float_ms:.0f} | 1.00 | yes |")
    rows = []
    for label, table in FORMATS.items():
        model = copy.deepcopy(base)
        report = quantize_module(model, {"by": "type", "linear": table})
        ms = statistics.median(step_times(model, batch, a.steps)) * 1e3
        ratio = ms / float_ms
        print(f"| {label} ({len(report.changed)} layers) | {ms:.0f} | {ratio:.2f} | "
              f"{'yes' if ratio <= TARGET else 'NO'} |", flush=True)
        rows.append({"format": label, "layers": len(report.changed), "ms": ms, "ratio": ratio})
    write_json(a.out, {"task": "bench_formats", "batch": a.batch, "length": a.length, "steps": a.steps,
                       "threads": a.threads, "target_ratio": TARGET, "float_ms": float_ms, "formats": rows,
                       "meta": run_metadata()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
