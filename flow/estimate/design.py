"""``flow estimate``: synthesize an emitted design for Xilinx 7-series and Lattice ECP5, per layer
and in total, with its logic depth, an ECP5 Fmax from nextpnr, and synthesis wall times; the
figures go into the design's report.json and report.md.

Synthesis is hierarchical (``synth_xilinx`` / ``synth_ecp5`` without ``-flatten``), so each layer
instance keeps its own counts; the totals are the hierarchy's. The logic depth is Yosys' ``ltp
-noff`` on the flattened xc7 netlist without its flip-flops, shift registers and block RAMs: the
most cells (LUTs, carry blocks, DSPs) on one path between registers.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from flow.estimate.nextpnr import NextpnrError, place_and_route
from flow.estimate.yosys import run_yosys, summarize_cells

TARGETS = ("xc7", "ecp5")
ECP5_GROUPS = {"LUT4": "LUT4", "TRELLIS_FF": "FF", "CCU2C": "CCU2C", "MULT18X18D": "MULT18X18D", "DP16KD": "BRAM",
               "TRELLIS_DPR16X4": "LUTRAM", "PFUMX": "MUX", "L6MUX21": "MUX"}


def design_sources(folder: Path) -> tuple[list[Path], str]:
    """The RTL files (rtl/filelist.f order) and top module of an emitted design folder."""
    folder = Path(folder)
    filelist = folder / "rtl" / "filelist.f"
    if not filelist.exists():
        raise FileNotFoundError(f"{folder} has no RTL ({filelist} is missing); emit the design first with "
                                f"`flow emit-rtl` or Design.emit")
    files = [folder / "rtl" / line.strip() for line in filelist.read_text().splitlines() if line.strip()]
    report = folder / "report.json"
    top = json.loads(report.read_text()).get("top") if report.exists() else None
    return files, top or files[-1].stem


def _read(files: list[Path], top: str) -> list[str]:
    return [f"read_verilog -sv {' '.join(str(f) for f in files)}", f"hierarchy -check -top {top}"]


def module_key(stat: dict[str, Any], name: str) -> str | None:
    """``name`` as ``stat -json`` spells it (plain module names get Yosys' leading backslash)."""
    for key in (name, "\\" + name):
        if key in stat["modules"]:
            return key
    return None


def hierarchy_totals(stat: dict[str, Any], module: str, memo: dict[str, Counter] | None = None) -> Counter:
    """Primitive cell counts of ``module`` with its submodule instances expanded (from ``stat -json``)."""
    memo = {} if memo is None else memo
    module = module_key(stat, module) or module
    if module not in memo:
        total: Counter = Counter()
        for cell, count in stat["modules"][module]["num_cells_by_type"].items():
            if module_key(stat, cell):
                for sub, n in hierarchy_totals(stat, cell, memo).items():
                    total[sub] += n * count
            else:
                total[cell] += count
        memo[module] = total
    return memo[module]


def per_instance(stat: dict[str, Any], top_cells: dict[str, Any], group) -> dict[str, dict[str, int]]:
    """Each submodule instance of the top (a layer, a cast, a FIFO): its grouped counts."""
    memo: dict[str, Counter] = {}
    rows = {}
    for name, cell in top_cells.items():
        if module_key(stat, cell["type"]):
            rows[name.lstrip("\\")] = group(hierarchy_totals(stat, cell["type"], memo))
    return rows


def _lut_sizes(cells: Counter) -> dict[str, int]:
    """LUTs by size, stand-alone inverters (LUT1s on the device) as ``INV``."""
    return {name: n for name, n in sorted(cells.items()) if re.fullmatch(r"LUT\d|INV", name)}


def group_ecp5(cells: Counter) -> dict[str, int]:
    groups = dict.fromkeys(dict.fromkeys(ECP5_GROUPS.values()), 0)
    for cell, count in cells.items():
        name = cell.lstrip("\\$")
        if name in ECP5_GROUPS:
            groups[ECP5_GROUPS[name]] += count
    return groups


def synth_commands(target: str, top: str, io: bool = True) -> list[str]:
    """The synthesis commands of ``target`` (xc7 or ecp5) for module ``top``; ``io`` false leaves out
    the I/O and clock buffers a design's top gets (a module synthesized alone, flow.estimate.per_module)."""
    if target == "xc7":
        return ["scratchpad -set abc9.verify false",  # &verify can run for tens of minutes
                f"synth_xilinx -family xc7 -top {top}" + ("" if io else " -noiopad -noclkbuf")]
    return [f"synth_ecp5 -noflatten -top {top}"]


def synth_xc7(files: list[Path], top: str, timeout: float, tmp: Path) -> dict[str, Any]:
    start = time.perf_counter()
    run_yosys(_read(files, top) + [
        # proc first: a top written with always blocks (as da4ml's) cannot be written as JSON before it
        f"proc {top}", f"select {top}", f"write_json -selected {tmp / 'top.json'}", "select -clear",
        *synth_commands("xc7", top),
        f"tee -q -o {tmp / 'stat.json'} stat -json -top {top}",
        "flatten", f"select -module {top} t:FD* t:SRL* t:RAMB* %u %u %n",  # paths end at registers and RAMs
        f"tee -q -o {tmp / 'ltp.txt'} ltp -noff",
    ], timeout, tmp / "xc7.log")
    stat = json.loads((tmp / "stat.json").read_text())
    cells = hierarchy_totals(stat, top)
    depth = re.search(r"length=(\d+)", (tmp / "ltp.txt").read_text())
    top_cells = json.loads((tmp / "top.json").read_text())["modules"][top]["cells"]
    return {"total": summarize_cells(dict(cells)), "lut_sizes": _lut_sizes(cells), "cells": dict(sorted(cells.items())),
            "logic_depth": int(depth.group(1)) if depth else None,
            "layers": per_instance(stat, top_cells, lambda c: summarize_cells(dict(c))),
            "seconds": round(time.perf_counter() - start, 1)}


def synth_ecp5(files: list[Path], top: str, timeout: float, tmp: Path, pnr: bool, pnr_timeout: float) -> dict[str, Any]:
    start = time.perf_counter()
    netlist = tmp / "ecp5.json"
    run_yosys(_read(files, top) + [
        f"proc {top}", f"select {top}", f"write_json -selected {tmp / 'top5.json'}", "select -clear",
        *synth_commands("ecp5", top), f"tee -q -o {tmp / 'stat5.json'} stat -json -top {top}",
        "flatten", f"write_json {netlist}",
    ], timeout, tmp / "ecp5.log")
    stat = json.loads((tmp / "stat5.json").read_text())
    top_cells = json.loads((tmp / "top5.json").read_text())["modules"][top]["cells"]
    out: dict[str, Any] = {"total": group_ecp5(hierarchy_totals(stat, top)),
                           "layers": per_instance(stat, top_cells, group_ecp5),
                           "seconds": round(time.perf_counter() - start, 1)}
    if pnr:  # a design that does not fit or route keeps its synthesis figures; the reason is recorded
        start = time.perf_counter()
        try:
            out["pnr"] = place_and_route(netlist, timeout=pnr_timeout)
        except NextpnrError as error:
            out["pnr"] = {"fmax_mhz": None, "error": str(error)}
        out["pnr"]["seconds"] = round(time.perf_counter() - start, 1)
    return out


def estimate_design(folder: str | Path, targets: tuple[str, ...] = TARGETS, timeout: float = 900.0, pnr: bool = True,
                    pnr_timeout: float = 1800.0, log=print, keep_ecp5_netlist: Path | None = None) -> dict[str, Any]:
    """Synthesize ``folder``'s RTL for each target; write the figures into its report.json/.md; return them.
    ``keep_ecp5_netlist`` copies the flattened ECP5 netlist there (to place and route it elsewhere)."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown target(s) {unknown}; use {', '.join(TARGETS)}")
    folder = Path(folder)
    files, top = design_sources(folder)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if "xc7" in targets:
            log(f"{top}: Yosys synth_xilinx (xc7) ...")
            results["xc7"] = synth_xc7(files, top, timeout, tmp)
        if "ecp5" in targets:
            log(f"{top}: Yosys synth_ecp5" + (" + nextpnr-ecp5 place and route ..." if pnr else " ..."))
            results["ecp5"] = synth_ecp5(files, top, timeout, tmp, pnr, pnr_timeout)
            if keep_ecp5_netlist is not None:
                shutil.copyfile(tmp / "ecp5.json", keep_ecp5_netlist)
    write_estimate(folder, results)
    return results


def throughput(report: dict[str, Any], fmax_mhz: float | None) -> float | None:
    """Vectors per second at ``fmax_mhz``: one vector per II cycles."""
    ii = (report.get("cycles") or {}).get("initiation_interval")
    return fmax_mhz * 1e6 / ii if fmax_mhz and ii else None


def write_estimate(folder: Path, results: dict[str, Any]) -> None:
    path = folder / "report.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    fmax = results.get("ecp5", {}).get("pnr", {}).get("fmax_mhz")
    results["vectors_per_second_at_ecp5_fmax"] = throughput(report, fmax)
    report["estimate"] = results
    path.write_text(json.dumps(report, indent=2) + "\n")
    md = folder / "report.md"
    text = md.read_text() if md.exists() else ""
    text = text.split("\n## Synthesis estimate")[0].rstrip() + "\n\n" + estimate_markdown(results) + "\n"
    md.write_text(text)


def estimate_markdown(results: dict[str, Any]) -> str:
    lines = ["## Synthesis estimate", ""]
    if "xc7" in results:
        x = results["xc7"]
        lines += ["Xilinx 7-series (`synth_xilinx -family xc7`, hierarchical), "
                  f"{x['seconds']} s; logic depth {x['logic_depth']} cells; LUT sizes {x['lut_sizes']}", "",
                  "| instance | " + " | ".join(x["total"]) + " |", "|---" * (len(x["total"]) + 1) + "|"]
        for name, row in {**x["layers"], "total": x["total"]}.items():
            lines.append(f"| {name} | " + " | ".join(str(v) for v in row.values()) + " |")
        lines.append("")
    if "ecp5" in results:
        e = results["ecp5"]
        pnr = e.get("pnr")
        lines += [f"Lattice ECP5 (`synth_ecp5`), {e['seconds']} s" + (
            f"; nextpnr-ecp5 (LFE5U-85F, out of context) Fmax {pnr['fmax_mhz']} MHz in {pnr['seconds']} s"
            if pnr and pnr.get("fmax_mhz") else f"; no Fmax: {pnr['error']}" if pnr else ""),
            "", "| instance | " + " | ".join(e["total"]) + " |", "|---" * (len(e["total"]) + 1) + "|"]
        for name, row in {**e["layers"], "total": e["total"]}.items():
            lines.append(f"| {name} | " + " | ".join(str(v) for v in row.values()) + " |")
        if results.get("vectors_per_second_at_ecp5_fmax"):
            lines += ["", f"Throughput at the ECP5 Fmax: {results['vectors_per_second_at_ecp5_fmax']:,.0f} vectors/s"]
    return "\n".join(lines)
