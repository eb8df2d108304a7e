"""Shared helpers for component regressions: random stimulus with extremes, and one run."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from flow.formats.fixed import FixedFormat
from flow.hardware.verilator import build, default_build_root, run_stream
from flow.toolchain import rtl_dir

REGRESSION_LOG = default_build_root() / "regression.jsonl"


def library_sources() -> list[Path]:
    """Every hand-written component: small, so each build reads them all."""
    return sorted(rtl_dir().glob("*.sv"))


def random_codes(fmt: FixedFormat, count: int, rng: random.Random) -> list[int]:
    """Random codes of ``fmt`` that always include its extremes, zero and +-1."""
    specials = [fmt.min_code, fmt.max_code, 0, min(1, fmt.max_code), max(-1, fmt.min_code)]
    codes = [rng.randint(fmt.min_code, fmt.max_code) for _ in range(count)]
    for index, special in enumerate(specials[: count]):
        codes[rng.randrange(count) if index else 0] = special
    return codes


def to_unsigned(codes: list[int], width: int) -> list[int]:
    """Two's complement bit patterns, as the stream carries them."""
    mask = (1 << width) - 1
    return [c & mask for c in codes]


def simulate(
    name: str,
    toplevel: str,
    parameters: dict[str, Any],
    inputs: list[int],
    expected: list[int],
    *,
    in_width: int,
    out_width: int,
    out_par: int,
    vectors: int,
    work_dir: Path,
    seed: int = 1,
    cycles_per_vector: int = 1,
    sources: list[Path] | None = None,
) -> dict[str, Any]:
    """Build (cached) and run one configuration; log its figures for the regression summary."""
    built = build(toplevel, sources or library_sources(), parameters)
    spec = {
        "in_width": in_width,
        "out_width": out_width,
        "out_par": out_par,
        "vectors": vectors,
        "inputs": to_unsigned(inputs, in_width),
        "expected": to_unsigned(expected, out_width),
        "seed": seed,
        "cycles_per_vector": cycles_per_vector,
    }
    results = run_stream(built, spec, work_dir)
    REGRESSION_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(REGRESSION_LOG, "a") as log:
        log.write(json.dumps({"name": name, "pid": os.getpid(), **{k: v for k, v in results.items()
                                                                    if k not in ("examples", "received")}}) + "\n")
    return results
