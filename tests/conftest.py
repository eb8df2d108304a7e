"""Session-wide: print the component/design regression totals at the end of `make test`."""
import json
import os

from tests.sim.harness import REGRESSION_LOG


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
