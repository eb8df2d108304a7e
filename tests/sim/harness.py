"""Shared helpers for component regressions: random stimulus with extremes, and one run."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flow.simulation.stimulus import library_sources, to_unsigned
from flow.simulation.verilator import build, default_build_root, run_stream

REGRESSION_LOG = default_build_root() / "regression.jsonl"


def simulate(
    name: str,
    toplevel: str,
    parameters: dict[str, Any],
    inputs: list[int] | None = None,
    expected: list[int] | None = None,
    *,
    in_width: int | None = None,
    out_width: int | None = None,
    out_par: int | None = None,
    vectors: int,
    work_dir: Path,
    seed: int = 1,
    cycles_per_vector: int = 1,
    sources: list[Path] | None = None,
    ports: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Build (cached) and run one configuration; log its figures for the regression summary.

    A component with one input ``s_axis`` and one output ``m_axis`` passes ``inputs``,
    ``expected``, ``in_width``, ``out_width`` and ``out_par``. One with other or more streams
    passes ``ports`` instead: ``{"in": {prefix: {"data": codes, "width": bits}},
    "out": {prefix: {"data": codes, "width": bits, "par": elements per beat}}}`` (codes signed
    or not, as for ``inputs``); latency is measured from the first input port to the first
    output port, the initiation interval on the first output port.
    """
    built = build(toplevel, sources or library_sources(), parameters)
    spec: dict[str, Any] = {"vectors": vectors, "seed": seed, "cycles_per_vector": cycles_per_vector}
    if ports is None:
        if inputs is None or expected is None or None in (in_width, out_width, out_par):
            raise TypeError("simulate needs inputs, expected, in_width, out_width and out_par, or ports")
        spec.update({
            "in_width": in_width,
            "out_width": out_width,
            "out_par": out_par,
            "inputs": to_unsigned(inputs, in_width),
            "expected": to_unsigned(expected, out_width),
        })
    else:
        if inputs is not None or expected is not None:
            raise TypeError("pass either inputs and expected or ports, not both")
        spec["ports"] = {
            "in": {prefix: {"data": to_unsigned(port["data"], port["width"]), "width": port["width"]}
                   for prefix, port in ports["in"].items()},
            "out": {prefix: {"data": to_unsigned(port["data"], port["width"]), "width": port["width"],
                             "par": port.get("par", 1)}
                    for prefix, port in ports["out"].items()},
        }
    results = run_stream(built, spec, work_dir)
    REGRESSION_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(REGRESSION_LOG, "a") as log:
        log.write(json.dumps({"name": name, "pid": os.getpid(),
                              **{k: v for k, v in results.items()
                                 if k not in ("examples", "received", "received_ports")}}) + "\n")
    return results
