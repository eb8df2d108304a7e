"""Per-module synthesis of a design too large for one Yosys run (bert-tiny): elaborate it once, then
synthesize each distinct module the top instantiates (with its own submodules, hierarchically, by the
same ``synth_xilinx`` / ``synth_ecp5 -noflatten`` commands as ``flow estimate``) in its own process
under its own timeout, cached by content, and sum the instances' counts with the top's own glue.

The sum is a per-module sum: no optimization crosses a module boundary, as in ``flow estimate``'s
hierarchical synthesis, so on a design that finishes both ways the two totals agree. A module that
runs out of time is recorded as timed out (its instances are missing from the total), not dropped.
"""
from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flow.estimate.design import _read, design_sources, group_ecp5, hierarchy_totals, synth_commands
from flow.estimate.yosys import YosysError, run_yosys, summarize_cells

METHOD = "per-module sum (no cross-module optimization)"
UNIT_TOP = "flow_unit_top"


GROUP: dict[str, Callable[[Counter], dict[str, int]]] = {"xc7": lambda c: summarize_cells(dict(c)),
                                                          "ecp5": group_ecp5}


def split_rtlil(text: str) -> dict[str, list[str]]:
    """The modules of a ``write_rtlil`` dump: name -> its lines (top-level attributes included)."""
    modules: dict[str, list[str]] = {}
    pending: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if current is not None:
            current.append(line)
            if line == "end":
                current = None
        elif line.startswith("attribute "):
            pending.append(line)
        elif line.startswith("module "):
            current = pending + [line]
            modules[line.split()[1]] = current
            pending = []
    return modules


def children(lines: list[str], modules: dict[str, list[str]]) -> Counter:
    """How many instances of each module of the design a module's lines hold."""
    found: Counter = Counter()
    for line in lines:
        if line.startswith("  cell ") and line.split()[1] in modules:
            found[line.split()[1]] += 1
    return found


def subtree(name: str, modules: dict[str, list[str]]) -> list[str]:
    """``name`` and every module under it, each once."""
    order, stack = [], [name]
    while stack:
        module = stack.pop()
        if module not in order:
            order.append(module)
            stack.extend(children(modules[module], modules))
    return order


def blackbox_stub(lines: list[str]) -> list[str]:
    """A module's ports only, marked a black box (the top's glue is synthesized without its children)."""
    name = next(line for line in lines if line.startswith("module "))
    ports = [line for line in lines if re.match(r"  wire .*\b(input|output|inout) \d+ ", line)]
    return ["attribute \\blackbox 1", name, *ports, "end"]


def unit_text(name: str, modules: dict[str, list[str]], top: bool = False) -> str:
    """The RTLIL of one synthesis unit, its top renamed ``UNIT_TOP``: a module with its subtree, or
    (``top``) the design's top with its children as black boxes."""
    out = []
    for module in ([name] if top else subtree(name, modules)):
        for line in modules[module]:
            out.append(f"module \\{UNIT_TOP}" if module == name and line.startswith("module ") else line)
    if top:
        for child in children(modules[name], modules):
            out += blackbox_stub(modules[child])
    return "\n".join(out) + "\n"


def cache_key(commands: list[str], text: str) -> str:
    """Hash of a unit's synthesis commands and RTLIL (source locations left out, so a re-emitted
    folder hits the cache)."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("attribute \\src"))
    return hashlib.sha256("\n".join([*commands, body]).encode()).hexdigest()[:24]


def synth_unit(text: str, commands: list[str], timeout: float, tmp: Path, boxes: frozenset[str] = frozenset()) -> Counter:
    """Primitive counts of one unit synthesized by ``commands``, its black boxes (``boxes``, module
    names) left out."""
    (tmp / "unit.il").write_text(text)
    run_yosys([f"read_rtlil {tmp / 'unit.il'}", f"hierarchy -check -top {UNIT_TOP}", *commands,
               f"tee -q -o {tmp / 'stat.json'} stat -json -top {UNIT_TOP}"], timeout, tmp / "unit.log")
    stat = json.loads((tmp / "stat.json").read_text())
    boxes = {box.lstrip("\\") for box in boxes}
    return Counter({cell: n for cell, n in hierarchy_totals(stat, UNIT_TOP).items() if cell.lstrip("\\") not in boxes})


def library_name(module: str) -> str:
    """``$paramod$<hash>\\linear`` or ``$paramod\\broadcast\\WIDTH=...`` -> the library module's name."""
    found = re.match(r"\$paramod(?:\$[0-9a-f]+)?\\([^\\]+)", module)
    return found.group(1) if found else module.lstrip("\\")


def elaborate(files: list[Path], top: str, timeout: float, tmp: Path) -> dict[str, list[str]]:
    """Read and elaborate the design once (no synthesis); its modules as RTLIL."""
    run_yosys(_read(files, top) + [f"write_rtlil {tmp / 'design.il'}"], timeout, tmp / "elaborate.log")
    return split_rtlil((tmp / "design.il").read_text())


def estimate_per_module(folder: str | Path, targets: tuple[str, ...] = ("xc7",), timeout: float = 900.0,
                        cache: Path | None = None, log: Callable[[str], None] = print,
                        elaborate_timeout: float = 1800.0, budget: float | None = None) -> dict[str, Any]:
    """Per-module synthesis of ``folder``'s design for each target: the total (a per-module sum), each
    distinct module's counts, instances, wall time and whether it came from ``cache``, and the modules
    that failed or ran out of ``timeout`` seconds (each module's own limit), or were not started
    because the whole call's ``budget`` seconds had run out."""
    deadline = time.perf_counter() + budget if budget is not None else float("inf")
    files, top = design_sources(Path(folder))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        start = time.perf_counter()
        modules = elaborate(files, top, min(elaborate_timeout, budget if budget is not None else elaborate_timeout), tmp)
        top_key = f"\\{top}"
        instances = children(modules[top_key], modules)
        names = _instance_names(modules[top_key], instances)
        results: dict[str, Any] = {"elaborate_seconds": round(time.perf_counter() - start, 1)}
        for target in targets:
            results[target] = _target(modules, top_key, instances, names, target, timeout, cache, tmp, log, deadline)
    return results


def _instance_names(lines: list[str], instances: Counter) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {module: [] for module in instances}
    for line in lines:
        parts = line.split()
        if line.startswith("  cell ") and parts[1] in names:
            names[parts[1]].append(parts[2].lstrip("\\"))
    return names


def _target(modules, top_key, instances, names, target, timeout, cache, tmp, log, deadline) -> dict[str, Any]:
    start = time.perf_counter()
    total: Counter = Counter()
    units: dict[str, Any] = {}
    timed_out = []
    jobs = [("(top glue)", top_key, True, 1)] + [(None, m, False, n) for m, n in instances.items()]
    for i, (label, module, is_top, count) in enumerate(jobs):
        text = unit_text(module, modules, top=is_top)
        commands = synth_commands(target, UNIT_TOP, io=is_top)
        key = cache_key(commands, text)
        label = label or f"{library_name(module)} {key[:8]}"
        row: dict[str, Any] = {"module": library_name(module), "instances": ["(top)"] if is_top else names[module],
                               "count": count}
        hit = cache / target / f"{key}.json" if cache is not None else None
        unit_start = time.perf_counter()
        if hit is not None and hit.exists():
            cached = json.loads(hit.read_text())
            cells, row["cached"], row["seconds"] = Counter(cached["cells"]), True, cached["seconds"]
        else:
            try:
                left = deadline - time.perf_counter()
                if left < 1:
                    raise YosysError("not started: the run's time budget was spent")
                boxes = frozenset(instances) if is_top else frozenset()
                cells = synth_unit(text, commands, min(timeout, left), tmp, boxes)
            except YosysError as error:
                row.update(error=str(error), seconds=round(time.perf_counter() - unit_start, 1))
                timed_out.append(label)
                units[label] = row
                log(f"{target} [{i + 1}/{len(jobs)}] {label} x{count}: {error}")
                continue
            row["cached"], row["seconds"] = False, round(time.perf_counter() - unit_start, 1)
            if hit is not None:
                hit.parent.mkdir(parents=True, exist_ok=True)
                hit.write_text(json.dumps({"cells": dict(cells), "seconds": row["seconds"]}) + "\n")
        row["each"] = GROUP[target](cells)
        units[label] = row
        for cell, n in cells.items():
            total[cell] += n * count
        log(f"{target} [{i + 1}/{len(jobs)}] {label} x{count}: {row['each']} ({row['seconds']} s"
            + (", cached)" if row["cached"] else ")"))
    return {"method": METHOD, "total": GROUP[target](total), "cells": dict(sorted(total.items())), "units": units,
            "failed": timed_out, "complete": not timed_out, "timeout_per_module": timeout,
            "seconds": round(time.perf_counter() - start, 1)}
