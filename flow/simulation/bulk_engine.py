"""The bulk simulation engine: a design's whole vector set through its top in one Verilator binary.

sim/tb_bulk.sv (the SystemVerilog twin of the cocotb testbench sim/tb_stream.py) reads packed
input and expected beats from binary files, drives the stream with random valid gaps and
backpressure, compares every output element and writes key=value results; this module packs the
beats, builds the binary (cached under build/sim like flow/simulation/verilator.py's builds), runs
it and turns its results into the dict ``run_stream`` returns, so ``simulate_design`` reports
both engines the same way.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from flow.simulation.verilator import (
    Build,
    default_build_root,
    first_error,
    rtl_dir_plusargs,
    runtime_object_cache,
    sources_folder,
)
from flow.toolchain import setup_verilator, testbench_dir, verilator_version

TESTBENCH = "tb_bulk"
# Verilator -O3 and fast X handling as the cocotb builds; the clock comes from a C++ main
# (sim/tb_bulk_main.cpp), which needs no --timing or coroutines. Functions are split at 2,000
# statements and files at 20,000: a shift-add design is one huge combinational function
# otherwise, and GCC's time grows faster than its size. On the digits MLP fully parallel
# (shift-add), the split build took 58.7 s against 151.3 s (0.39x), and simulates as fast
# (77k against 73k vectors/s with random gaps and backpressure).
VERILATOR_ARGS = ["-O3", "--x-assign", "fast", "--x-initial", "fast", "--output-split", "20000",
                  "--output-split-cfuncs", "2000"]
# C++, measured on the digits designs: -Og compiles in 0.7x the time of -O1 and runs as fast;
# -O2 takes 2x as long to compile (and runs the folded design 1.7x faster); -O0 compiles in 0.55x
# but runs 20x slower. Verilator's runtime objects come from flow's object cache.
MAKE_ARGS = ["OPT_FAST=-Og", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1"]
# A static binary skips dynamic linking at start: 0.7 of the 3 ms a 360-vector run of the fully
# parallel digits design takes. Where the static C library is missing the link runs again without.
STATIC = "USER_LDFLAGS=-static"
CLEAN_VECTORS = 8


def beat_parameters(meta: dict[str, Any]) -> dict[str, int]:
    """tb_bulk's parameters from a design's meta.json: beat widths and beats per vector."""
    for side in ("in", "out"):
        if meta[f"{side}_features"] % meta[f"{side}_par"]:
            raise ValueError(f"{side}_par {meta[f'{side}_par']} does not divide {meta[f'{side}_features']} features")
    if meta["out_width"] > 64:
        raise ValueError(f"the bulk testbench compares elements of up to 64 bits, not {meta['out_width']}; "
                         f"use the cocotb engine")
    return {"IN_BITS": meta["in_width"] * meta["in_par"], "OUT_BITS": meta["out_width"] * meta["out_par"],
            "OUT_WIDTH": meta["out_width"], "IN_BEATS": meta["in_features"] // meta["in_par"],
            "OUT_BEATS": meta["out_features"] // meta["out_par"],
            **({"MASK_BEATS": meta["mask_bits"]} if meta.get("mask_bits") else {})}


def pack_beats(rows: list[list[int]], width: int, par: int) -> list[int]:
    """The beats of every row: ``par`` elements a beat, element 0 in the least significant bits,
    each element masked to ``width`` bits."""
    mask = (1 << width) - 1
    beats = []
    for row in rows:
        for start in range(0, len(row), par):
            value = 0
            for element in reversed(row[start:start + par]):
                value = (value << width) | (element & mask)
            beats.append(value)
    return beats


def beat_bytes(beats: list[int], bits: int) -> bytes:
    """Beats as tb_bulk's $fread reads them: ceil(bits/8) bytes each, most significant first."""
    size = (bits + 7) // 8
    return b"".join(beat.to_bytes(size, "big") for beat in beats)


def unpack_beats(words: list[str], width: int, par: int, signed: bool) -> list[int]:
    """The element codes of hex beat words, element 0 first; signed codes when ``signed``."""
    mask, top = (1 << width) - 1, 1 << (width - 1)
    elements = []
    for word in words:
        value = int(word, 16)
        for _ in range(par):
            element = value & mask
            elements.append(element - (1 << width) if signed and element & top else element)
            value >>= width
    return elements


def build_bulk(toplevel: str, sources: list[Path], meta: dict[str, Any],
               build_root: Path | None = None) -> Build:
    """Compile tb_bulk around ``toplevel`` once per distinct key (Verilator, sources, testbench,
    parameters, flags); concurrent callers wait on a file lock."""
    setup_verilator()
    parameters = beat_parameters(meta)
    bench = [testbench_dir() / "tb_bulk.sv", testbench_dir() / "tb_bulk_main.cpp"]
    digest = hashlib.sha256()
    digest.update(verilator_version().encode())
    digest.update(json.dumps([toplevel, parameters, VERILATOR_ARGS, MAKE_ARGS, STATIC], sort_keys=True).encode())
    for source in [*sorted(sources), *bench]:
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    key = digest.hexdigest()[:16]
    build_root = build_root or default_build_root()
    name = f"{TESTBENCH}-{toplevel}-{key}"
    directory = build_root / name
    build_root.mkdir(parents=True, exist_ok=True)
    with open(build_root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (directory / "flow_build.done").exists():
            return Build(directory, toplevel, 0.0, True, sources_folder(sources))
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        start = time.perf_counter()
        verilate = [
            "verilator", "--cc", "--exe", "-Mdir", str(directory), "--top-module", TESTBENCH,
            "--prefix", "Vtb_bulk", "-o", "Vtb_bulk", *VERILATOR_ARGS, f"+define+DUT={toplevel}",
            "+define+TB_EXTERNAL_CLOCK", *(["+define+TB_MASK"] if "MASK_BEATS" in parameters else []),
            *(f"-G{k}={v}" for k, v in parameters.items()),
            *map(str, sources), *map(str, bench),
        ]
        jobs = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        make = ["make", "-C", str(directory), "-f", "Vtb_bulk.mk", "-j", jobs, *MAKE_ARGS]
        env = dict(os.environ)
        objcache = runtime_object_cache(flavour=f"{TESTBENCH} {' '.join(MAKE_ARGS)}")
        if objcache is not None:
            env["MAKEFLAGS"] = f"{env.get('MAKEFLAGS', '')} OBJCACHE={objcache}".strip()
        log_file = build_root / f"{name}.log"
        with open(log_file, "w") as log:
            done = subprocess.run(verilate, stdout=log, stderr=subprocess.STDOUT, env=env).returncode == 0
            if done:
                done = subprocess.run([*make, STATIC, "Vtb_bulk"], stdout=log, stderr=subprocess.STDOUT,
                                      env=env).returncode == 0
                if not done:  # no static C library: link as usual (only the link runs again)
                    log.write("flow: the static link failed; linking dynamically\n")
                    log.flush()
                    done = subprocess.run([*make, "Vtb_bulk"], stdout=log, stderr=subprocess.STDOUT,
                                          env=env).returncode == 0
        if not done or not (directory / "Vtb_bulk").exists():
            raise RuntimeError(f"verilator build of {TESTBENCH} around {toplevel} failed: "
                               f"{first_error(log_file, 'see the log')} (full log: {log_file})")
        seconds = time.perf_counter() - start
        (directory / "flow_build.done").write_text(f"{seconds:.3f}\n")
        return Build(directory, toplevel, seconds, False, sources_folder(sources))


def pause_threshold(probability: float) -> int:
    """A pause probability as tb_bulk's threshold on a 32-bit random number."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"a gap or stall probability lies in [0, 1], not {probability}")
    return round(probability * (1 << 32))


def run_bulk(built: Build, meta: dict[str, Any], inputs: list[list[int]], expected: list[list[int]],
             work_dir: Path, seed: int = 1, gap: float = 0.3, stall: float = 0.3,
             clean_vectors: int = CLEAN_VECTORS, masks: list[list[int]] | None = None) -> dict[str, Any]:
    """Run a bulk build on the vectors (signed or unsigned codes, one list a vector); return the
    results in ``run_stream``'s form, plus ``first_mismatch`` and the measured pause rates. A design
    with an attention mask input (meta ``mask_bits``) takes each vector's mask bits as ``masks``,
    driven on s_axis_mask with its own random gaps."""
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    vectors = len(inputs)
    params = beat_parameters(meta)
    if ("MASK_BEATS" in params) != (masks is not None) or (masks is not None and (
            len(masks) != vectors or any(len(row) != params["MASK_BEATS"] for row in masks))):
        raise ValueError(f"the design takes {params.get('MASK_BEATS', 0)} mask bits a vector; pass one mask row of "
                         f"that length a vector (masks.txt beside inputs.txt), or none without a mask input")
    names = ("inputs.bin", "expected.bin", "received.hex", "results.txt", *(("masks.bin",) if masks else ()))
    files = {name: work_dir / f"bulk_{name}" for name in names}
    files["inputs.bin"].write_bytes(beat_bytes(pack_beats(inputs, meta["in_width"], meta["in_par"]),
                                               params["IN_BITS"]))
    if masks is not None:  # one byte a beat, the bit in its least significant bit
        files["masks.bin"].write_bytes(bytes(bit & 1 for row in masks for bit in row))
    files["expected.bin"].write_bytes(beat_bytes(pack_beats(expected, meta["out_width"], meta["out_par"]),
                                                 params["OUT_BITS"]))
    for name in ("received.hex", "results.txt"):
        files[name].unlink(missing_ok=True)
    # the cocotb engine's budget, in cycles: a phase that runs past it has lost beats
    beats = vectors * (params["IN_BEATS"] + params["OUT_BEATS"] + params.get("MASK_BEATS", 0))
    budget = 4 * (beats + meta.get("initiation_interval", 1) * vectors + 200)
    budget = int(budget / max(0.05, (1 - gap) * (1 - stall)))
    command = [
        str(built.directory / "Vtb_bulk"), "+verilator+quiet", f"+vectors={vectors}",
        f"+clean={min(clean_vectors, vectors)}", f"+seed={seed}", f"+gap={pause_threshold(gap)}",
        f"+stall={pause_threshold(stall)}", f"+budget={budget}",
        *(f"+{name.split('.')[0]}={path.name}" for name, path in files.items()),  # in work_dir
        *rtl_dir_plusargs(built),  # the folded linears' weight files
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=work_dir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (work_dir / "sim.log").write_text(result.stdout + result.stderr)
    values: dict[str, str] = {}
    examples: list[list[int]] = []
    if files["results.txt"].exists():
        for line in files["results.txt"].read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "example":
                examples.append([int(v) for v in value.split()])
            else:
                values[key] = value
    if result.returncode != 0 or values.get("done") != "1":
        raise RuntimeError(f"the bulk simulation failed (exit {result.returncode}) before writing its results: "
                           f"{(result.stdout + result.stderr).strip()[-500:]} (log: {work_dir / 'sim.log'})")
    number = {k: int(v) for k, v in values.items() if k != "first_mismatch"}
    signed = meta.get("out_signed", True)
    width = meta["out_width"]

    def code(value: int) -> int:
        return value - (1 << width) if signed and value >> (width - 1) else value

    def mismatch(fields: list[int]) -> dict[str, Any]:
        phase, vector, element, got, want = fields
        return {"phase": ("clean", "random")[phase], "vector": vector, "element": element,
                "expected": code(want), "actual": code(got)}

    words = files["received.hex"].read_text().split() if files["received.hex"].exists() else []
    clean_first_in, clean_first_out = number["clean_first_in"], number["clean_first_out"]
    clean_last_out = number["clean_last_out"]
    random_first_in, random_last_out = number["random_first_in"], number["random_last_out"]
    run_cycles = number["random_run_cycles"]
    return {
        "vectors": vectors, "in_beats": number["in_beats"], "out_beats": number["out_beats"],
        "expected_out_beats": number["expected_out_beats"], "elements_compared": number["elements_compared"],
        "mismatches": number["mismatches"],
        "examples": [mismatch(e) for e in examples],
        "first_mismatch": mismatch([int(v) for v in values["first_mismatch"].split()])
        if "first_mismatch" in values else None,
        "received": unpack_beats(words, width, meta["out_par"], False),
        "latency_cycles": (clean_first_out - clean_first_in
                           if clean_first_out >= 0 and clean_first_in >= 0 else None),
        "initiation_interval": number["ii_min"] if number["ii_min"] >= 0 else None,
        "initiation_interval_max": number["ii_max"] if number["ii_max"] >= 0 else None,
        "clean_cycles_per_vector": ((clean_last_out - clean_first_in) / number["clean_vectors"]
                                    if clean_last_out >= 0 and clean_first_in >= 0 else None),
        "random_cycles": (random_last_out - random_first_in
                          if random_last_out >= 0 and random_first_in >= 0 else None),
        "gap_measured": number["gap_cycles"] / run_cycles if run_cycles else None,
        "stall_measured": number["stall_cycles"] / run_cycles if run_cycles else None,
        "timed_out": bool(number["timed_out"]),
        "cycles": number["cycles"], "sim_seconds": seconds, "build_seconds": built.seconds,
    }
