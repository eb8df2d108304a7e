"""Run Yosys (pyosys) in a subprocess with a timeout; synthesize and read resource counts."""
from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path


class YosysError(RuntimeError):
    """Yosys rejected the design or ran out of time; the message has the log's last lines."""


def run_yosys(commands: list[str], timeout: float = 600.0, log_path: Path | None = None) -> str:
    """Run Yosys commands in a fresh process; return its log, raise YosysError on failure."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "script.ys"
        script.write_text("\n".join(commands) + "\n")
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "flow.estimate.yosys_driver", str(script)],
                capture_output=True, text=True, timeout=timeout, preexec_fn=unlimited_stack,
            )
        except subprocess.TimeoutExpired as error:
            raise YosysError(f"yosys did not finish within {timeout:.0f} s") from error
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 or "ERROR:" in log:
        if log_path is None:  # keep the log of a failure where the message can point to it
            log_path = Path(tempfile.mkstemp(prefix="flow-yosys-", suffix=".log")[1])
        log_path.write_text(log)
        errors = [line.strip() for line in log.splitlines() if "ERROR" in line]
        first = errors[0] if errors else (log.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        if proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name
            raise YosysError(f"yosys crashed ({name}) after: {first} (full log: {log_path}); report it with the "
                             f"design, or lower the design's size")
        raise YosysError(f"yosys failed (exit {proc.returncode}): {first} (full log: {log_path})")
    if log_path is not None:
        log_path.write_text(log)
    return log


def unlimited_stack() -> None:
    """In the child: lift the stack limit (ABC recurses deeply on big designs and segfaults otherwise)."""
    try:
        resource.setrlimit(resource.RLIMIT_STACK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):  # a hard limit below infinity: raise the soft limit to it
        hard = resource.getrlimit(resource.RLIMIT_STACK)[1]
        resource.setrlimit(resource.RLIMIT_STACK, (hard, hard))


def read_commands(sources: list[Path], top: str, parameters: dict[str, object] | None = None) -> list[str]:
    """Read SystemVerilog sources and elaborate ``top`` with parameter overrides."""
    commands = [f"read_verilog -sv {' '.join(str(s) for s in sources)}"]
    if parameters:
        sets = " ".join(f"-set {name} {value}" for name, value in parameters.items())
        commands.append(f"chparam {sets} {top}")
    commands.append(f"hierarchy -check -top {top}")
    return commands


def synthesize_xilinx(
    sources: list[Path],
    top: str,
    parameters: dict[str, object] | None = None,
    timeout: float = 600.0,
    log_path: Path | None = None,
) -> dict[str, int]:
    """Synthesize for Xilinx 7-series (synth_xilinx) and count LUT/FF/DSP/BRAM/CARRY4 cells."""
    with tempfile.TemporaryDirectory() as tmp:
        stat_path = Path(tmp) / "stat.json"
        commands = read_commands(sources, top, parameters) + [
            "scratchpad -set abc9.verify false",  # &verify can run for tens of minutes
            f"synth_xilinx -family xc7 -flatten -top {top}",
            f"tee -q -o {stat_path} stat -json",
        ]
        run_yosys(commands, timeout, log_path)
        stat = json.loads(stat_path.read_text())
    cells = stat["design"]["num_cells_by_type"] if "design" in stat else {}
    return summarize_cells(cells)


CELL_GROUPS = {"FD": "FF", "DSP48E1": "DSP48E1", "RAMB": "BRAM", "CARRY4": "CARRY4",
               "MUXF": "MUXF"}  # Xilinx primitive name prefix -> the figure people compare
# Cells that take LUTs of a 7-series slice, and how many: logic LUTs, the stand-alone inverters
# Yosys leaves (each a LUT1 on the device), shift registers and distributed RAM (LUTs as memory,
# as Vivado's "Slice LUTs" counts them).
LUT_CELLS = {"LUT1": 1, "LUT2": 1, "LUT3": 1, "LUT4": 1, "LUT5": 1, "LUT6": 1, "INV": 1, "SRL16E": 1,
             "SRLC32E": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1S": 2,
             "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4}


def summarize_cells(cells: dict[str, int]) -> dict[str, int]:
    """Group Xilinx primitive counts into the figures people compare: ``LUT`` is every LUT a cell
    takes (LUT1..LUT6, INV, SRL and LUT RAM, weighted by ``LUT_CELLS``) and ``INV`` the inverters
    among them, so a netlist full of inverters cannot look small; FDRE/FDSE/... are ``FF``."""
    groups = {"LUT": 0, "INV": 0, **dict.fromkeys(CELL_GROUPS.values(), 0)}
    for cell, count in cells.items():
        name = cell.lstrip("\\$")
        if name in LUT_CELLS:
            groups["LUT"] += LUT_CELLS[name] * count
            groups["INV"] += count if name == "INV" else 0
            continue
        for prefix, group in CELL_GROUPS.items():
            if name.startswith(prefix):
                groups[group] += count
                break
    return groups
