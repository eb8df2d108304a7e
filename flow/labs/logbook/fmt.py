"""What the LOGBOOK generators share: reading a results file and writing markdown tables and numbers."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load(root: Path, relative: str) -> dict[str, Any]:
    """The results JSON at ``root/relative``; a missing file is a one-line error naming it."""
    path = root / relative
    if not path.exists():
        raise FileNotFoundError(f"{relative} does not exist; run the command the LOGBOOK quotes for it")
    return json.loads(path.read_text())


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def thousands(value: float) -> str:
    return f"{value:,.0f}"


def points(delta: float) -> str:
    """A difference of accuracies in percentage points, signed."""
    return f"{100 * delta:+.2f} pt"


def span(values: Sequence[float], digits: int = 3) -> str:
    """``mean (min-max)`` of ``values``."""
    return f"{sum(values) / len(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def over_seeds(values: Sequence[float], digits: int = 4) -> str:
    """One seed's value, or ``mean (min-max)`` over several seeds."""
    return f"{values[0]:.{digits}f}" if len(values) == 1 else span(values, digits)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def study_times(studies: Sequence[dict[str, Any]]) -> str:
    """``A to B s per study, C to D s per trial`` from studies' summaries (wall and trial seconds)."""
    walls = [s["wall_seconds"] for s in studies]
    trials = [t for s in studies for t in s["trial_seconds"]]
    per_trial = f"{min(trials):.1f} to {max(trials):.1f} s per trial"
    if len(walls) == 1:
        return f"{walls[0]:,.0f} s for {len(trials)} trials, {per_trial}"
    return f"{min(walls):,.0f} to {max(walls):,.0f} s per study, {per_trial}, {sum(walls):,.0f} s in all"
