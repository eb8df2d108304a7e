"""flow sim: stream a design's test vectors through its RTL in Verilator and check every beat."""
from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flow.emit.design_folder import MARKER
from flow.emit.vectors import read_vectors, write_rows


def _unsigned(rows: list[list[int]], width: int) -> list[int]:
    mask = (1 << width) - 1
    return [v & mask for row in rows for v in row]


def _code(value: int, width: int, signed: bool) -> int:
    """The code a received bit pattern holds in the output format."""
    return value - (1 << width) if signed and value >> (width - 1) else value


ENGINES = ("bulk", "cocotb")


def first_mismatch(received: list[list[int]], expected: list[list[int]]) -> dict[str, Any] | None:
    """The first element of the random phase that differs: vector, element, expected, actual."""
    for vector, (got, want) in enumerate(zip(received, expected)):
        for element, (g, w) in enumerate(zip(got, want)):
            if g != w:
                return {"phase": "random", "vector": vector, "element": element, "expected": w, "actual": g}
    return None


def simulate_design(folder: Path, vectors: int | None = None, seed: int = 1, gap: float = 0.3,
                    stall: float = 0.3, log: Callable[[str], None] = print,
                    build_root: Path | None = None, engine: str = "bulk") -> dict[str, Any]:
    """Build (cached) and run the design's top on its vectors; write and return sim_report.json.

    ``engine`` "bulk" runs the whole set in one Verilator binary (sim/tb_bulk.sv); "cocotb" drives
    every beat from Python (sim/tb_stream.py), slower but open to protocol debugging. Both write
    the same report and sim/received.txt.
    """
    from flow.simulation.verilator import build, run_stream

    if engine not in ENGINES:
        raise ValueError(f"unknown simulation engine {engine!r}; choose one of {', '.join(ENGINES)}")
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
    if engine == "bulk":
        from flow.simulation.bulk_engine import build_bulk, run_bulk

        built = build_bulk(meta["top"], sources, meta, build_root=build_root)
    else:
        built = build(meta["top"], sources, build_root=build_root)
    log(f"verilator build ({engine}): {'cached' if built.cached else f'{built.seconds:.1f} s'} ({built.directory})")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    masks = data.masks[:count].tolist() if data.masks is not None else None  # s_axis_mask's bits, a sample a row
    if engine == "bulk":
        results = run_bulk(built, meta, data.inputs[:count].tolist(), data.expected[:count].tolist(),
                           folder / "sim", seed=seed, gap=gap, stall=stall, masks=masks)
    else:
        spec = {
            "in_width": meta["in_width"], "out_width": meta["out_width"], "out_par": meta["out_par"],
            "vectors": count, "inputs": _unsigned(data.inputs[:count].tolist(), meta["in_width"]),
            "expected": _unsigned(data.expected[:count].tolist(), meta["out_width"]),
            "seed": seed, "gap": gap, "stall": stall, "return_outputs": True,
            "cycles_per_vector": meta["initiation_interval"],
        }
        if masks is not None:  # a second input port: the attention mask, one bit a beat
            spec["ports"] = {"in": {"s_axis": {"data": spec.pop("inputs"), "width": spec.pop("in_width")},
                                    "s_axis_mask": {"data": _unsigned(masks, 1), "width": 1}},
                             "out": {"m_axis": {"data": spec.pop("expected"), "width": spec.pop("out_width"),
                                                "par": spec.pop("out_par")}}}
        results = run_stream(built, spec, folder / "sim")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the simulator's CPU time (its own process)
    sim_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
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
    expected_rows = data.expected[:count].tolist()
    mismatch = results.get("first_mismatch") if engine == "bulk" else (
        first_mismatch(rows, expected_rows) if results["mismatches"] else None)
    if mismatch is None and results["mismatches"] and len(rows) != count:  # a vector lost, or one too many
        at = min(len(rows), count)
        mismatch = {"phase": "random", "vector": at, "element": 0,
                    "expected": expected_rows[at][0] if at < count else None,
                    "actual": rows[at][0] if at < len(rows) else None}
    report = {
        "vectors": count, "mismatches": results["mismatches"], "examples": results["examples"],
        "first_mismatch": mismatch,
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
        "sim_seconds": round(results["sim_seconds"], 4), "sim_cpu_seconds": round(sim_cpu, 4),
        "total_seconds": round(time.perf_counter() - start, 2),
        "engine": engine,
        "vectors_per_second": round(count / results["sim_seconds"]) if results["sim_seconds"] > 0 else None,
    }
    (folder / "sim" / "sim_report.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"simulated {count} vectors ({report['elements_compared']} elements compared, random gaps "
        f"{gap:.0%} and backpressure {stall:.0%}): {report['mismatches']} mismatches")
    if mismatch:
        log(f"  first mismatch ({mismatch['phase']} phase): vector {mismatch['vector']} element "
            f"{mismatch['element']}: expected {mismatch['expected']}, got {mismatch['actual']}")
    log(f"  hardware accuracy {hw_acc:.4f} (reference {ref_acc:.4f}); latency {report['latency_cycles']} "
        f"cycles, II {report['initiation_interval']} cycles, throughput "
        f"{report['throughput_vectors_per_cycle'] or 0:.4f} vectors/cycle")
    log(f"  build {report['build_seconds']} s{' (cached)' if built.cached else ''}, "
        f"simulation {report['sim_seconds']} s ({report['vectors_per_second'] or 0:,} vectors/s, {engine}); "
        f"report in {folder / 'sim' / 'sim_report.json'}")
    return report
