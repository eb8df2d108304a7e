"""Re-measure the confirmed Pareto points of `flow search hw` against the current estimator.

Rebuilds each confirmed design of results/hw_search/hw_search.json from its stored choice, estimates
it with flow.estimate.model and synthesizes it again with `flow estimate`'s xc7 flow (LUTs count INV
cells), and prints one JSON line per point with the LUT error. `python -m benches.estimator_pareto
[TRIAL ...] [--out FILE]`; without trials, every confirmed point.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from flow.estimate.design import design_sources, synth_xc7
from flow.estimate.model import estimate
from flow.search.hardware import HwSearch

RECORD = Path("results/hw_search/hw_search.json")
KEYS = ("LUT", "FF", "DSP48E1")


def remeasure(search: HwSearch, row: dict[str, Any]) -> dict[str, Any]:
    """One confirmed point: the estimate now, a fresh synthesis, and the stored figures."""
    design = search.build(row["choice"], f"pareto_{row['trial']}")
    estimated = estimate(design.graph)["total"]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        design.emit(tmp / "d", search.data.x_test[:8], search.data.y_test[:8], log=lambda _: None)
        files, top = design_sources(tmp / "d")
        start = time.perf_counter()
        synth = synth_xc7(files, top, 1200.0, tmp)
    synthesized = {k: synth["total"][k] for k in KEYS}
    return {"trial": row["trial"], "estimated": estimated, "synthesized": synthesized,
            "old_synthesized": row["synthesized"], "old_estimated": row["estimated"],
            "seconds": round(time.perf_counter() - start, 1),
            "lut_error": round((estimated["LUT"] - synthesized["LUT"]) / synthesized["LUT"], 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trials", nargs="*", type=int)
    ap.add_argument("--config", default="configs/digits_mlp.toml")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows to this JSON file")
    a = ap.parse_args(argv)
    search = HwSearch.from_config(a.config, log=lambda _: None)
    rows = []
    for row in json.loads(RECORD.read_text())["confirmed"]:
        if not a.trials or row["trial"] in a.trials:
            rows.append(remeasure(search, row))
            print(json.dumps(rows[-1]), flush=True)
    if a.out:
        a.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
