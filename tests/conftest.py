"""Session-wide: one torch thread per worker; the simulation regression totals at the end."""
import json
import os

import torch

from tests.fuzz.__main__ import FAST_BUILD
from tests.sim.harness import REGRESSION_LOG

# Every model in the tests is tiny: one thread each, or the two xdist workers' OpenMP threads
# wait on each other on a 2-core machine (a 5 ms training step took 0.5 s).
torch.set_num_threads(1)

# Test simulations run a few hundred beats: compiling Verilator's C++ unoptimized saves about a
# third of each build and costs little simulation time. (`flow sim` and benches keep -Os.)
os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} {FAST_BUILD}".strip()


def pytest_sessionstart(session):
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # the controller clears the previous run's log
        REGRESSION_LOG.unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter):
    if os.environ.get("PYTEST_XDIST_WORKER") or not REGRESSION_LOG.exists():
        return
    rows = [json.loads(line) for line in REGRESSION_LOG.read_text().splitlines() if line]
    if not rows:
        return
    regular = [r for r in rows if "mutant" not in r["name"]]
    terminalreporter.write_line(
        f"simulation regression: {len(regular)} configurations, "
        f"{sum(r['elements_compared'] for r in regular)} elements compared in "
        f"{sum(r['out_beats'] for r in regular)} output beats (random phase), "
        f"{sum(r['mismatches'] for r in regular)} mismatches; "
        f"Verilator builds {sum(r['build_seconds'] for r in regular):.0f} s, "
        f"simulations {sum(r['sim_seconds'] for r in regular):.0f} s")
