"""flow sim: stream a design's test vectors through its RTL in Verilator and check every beat."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flow.hardware.outputs import MARKER
from flow.hardware.vectors import read_vectors, write_rows


def _unsigned(rows: list[list[int]], width: int) -> list[int]:
    mask = (1 << width) - 1
    return [v & mask for row in rows for v in row]


def _code(value: int, width: int, signed: bool) -> int:
    """The code a received bit pattern holds in the output format."""
    return value - (1 << width) if signed and value >> (width - 1) else value


def simulate_design(folder: Path, vectors: int | None = None, seed: int = 1, gap: float = 0.3,
                    stall: float = 0.3, log: Callable[[str], None] = print,
                    build_root: Path | None = None) -> dict[str, Any]:
    """Build (cached) and run the design's top on its vectors; write and return sim_report.json."""
    from flow.hardware.verilator import build, run_stream

    folder = Path(folder)
    if not (folder / MARKER).exists() or not (folder / "rtl" / "filelist.f").exists():
        raise FileNotFoundError(f"{folder} is not a design flow emitted; run `flow emit-rtl` first "
                                f"(or pass the folder it printed)")
    data = read_vectors(folder / "vectors")
    meta = data.meta
    count = len(data.labels) if vectors is None else min(vectors, len(data.labels))
    if count < 1:
        raise ValueError(f"--vectors must be at least 1, got {vectors}")
    sources = [folder / "rtl" / name for name in (folder / "rtl" / "filelist.f").read_text().split()]
    start = time.perf_counter()
    built = build(meta["top"], sources, build_root=build_root)
    log(f"verilator build: {'cached' if built.cached else f'{built.seconds:.1f} s'} ({built.directory})")
    spec = {
        "in_width": meta["in_width"], "out_width": meta["out_width"], "out_par": meta["out_par"],
        "vectors": count, "inputs": _unsigned(data.inputs[:count].tolist(), meta["in_width"]),
        "expected": _unsigned(data.expected[:count].tolist(), meta["out_width"]),
        "seed": seed, "gap": gap, "stall": stall, "return_outputs": True,
        "cycles_per_vector": meta["initiation_interval"],
    }
    results = run_stream(built, spec, folder / "sim")
    out_signed = meta.get("out_signed", True)  # designs emitted before the key existed were signed
    received = [_code(v, meta["out_width"], out_signed) for v in results.pop("received") or []]
    n_out = meta["out_features"]
    rows = [received[i:i + n_out] for i in range(0, len(received) - n_out + 1, n_out)]
    write_rows(folder / "sim" / "received.txt", rows)
    predictions = [max(range(n_out), key=lambda k: row[k]) for row in rows]  # first max, as argmax
    labels = data.labels[:count].tolist()
    hw_correct = sum(p == y for p, y in zip(predictions, labels))
    ref_correct = int((data.expected[:count].argmax(dim=1) == data.labels[:count]).sum())
    hw_acc, ref_acc = hw_correct / count, ref_correct / count
    report = {
        "vectors": count, "mismatches": results["mismatches"], "examples": results["examples"],
        "elements_compared": results["elements_compared"], "out_beats": results["out_beats"],
        "expected_out_beats": results["expected_out_beats"],
        "hardware_correct": hw_correct, "reference_correct": ref_correct,
        "hardware_accuracy": hw_acc, "reference_accuracy": ref_acc,
        "latency_cycles": results["latency_cycles"], "initiation_interval": results["initiation_interval"],
        "initiation_interval_max": results["initiation_interval_max"],
        "throughput_vectors_per_cycle": (1 / results["clean_cycles_per_vector"]
                                         if results["clean_cycles_per_vector"] else None),
        "random_phase_cycles": results["random_cycles"], "gap": gap, "stall": stall, "seed": seed,
        "build_seconds": round(built.seconds, 2), "build_cached": built.cached,
        "sim_seconds": round(results["sim_seconds"], 2),
        "total_seconds": round(time.perf_counter() - start, 2),
    }
    (folder / "sim" / "sim_report.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"simulated {count} vectors ({report['elements_compared']} elements compared, random gaps "
        f"{gap:.0%} and backpressure {stall:.0%}): {report['mismatches']} mismatches")
    log(f"  hardware accuracy {hw_acc:.4f} (reference {ref_acc:.4f}); latency {report['latency_cycles']} "
        f"cycles, II {report['initiation_interval']} cycles, throughput "
        f"{report['throughput_vectors_per_cycle'] or 0:.4f} vectors/cycle")
    log(f"  build {report['build_seconds']} s{' (cached)' if built.cached else ''}, "
        f"simulation {report['sim_seconds']} s; report in {folder / 'sim' / 'sim_report.json'}")
    return report
