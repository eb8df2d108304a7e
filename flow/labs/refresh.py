"""Rewrite a search lab's results JSON from its stored studies, running no trial: curves, every
trial's value and listed attributes, trials at chance and the commits that ran them.

For results written before those fields existed: ``python -m flow.labs.refresh results/lab2/samplers_full.json``.
A study whose best trial changed since its test accuracy was measured is refused (rerun the lab).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import optuna

from flow.labs import lab2, lab3
from flow.labs.common import write_json
from flow.labs.search_harness import record_commits, study_summary
from flow.paths import REPO_ROOT
from flow.search import open_storage

PER_TRIAL = {**lab2.PER_TRIAL, "widths": lab3.PER_TRIAL, "formats": lab3.PER_TRIAL}


def refresh(path: Path, storage: str | None = None) -> dict[str, Any]:
    """The record at ``path`` with every study's summary recomputed from ``storage`` (default: the
    record's own storage, relative to the checkout); its test accuracies are kept."""
    record = json.loads(path.read_text())
    if record.get("task") not in PER_TRIAL:
        raise ValueError(f"{path} is not a lab 2 or lab 3 search record (task {record.get('task')!r})")
    target = storage or str(REPO_ROOT / record["storage"])
    for name, old in record["studies"].items():
        study = optuna.load_study(study_name=name, storage=open_storage(target))
        summary = study_summary(study, PER_TRIAL[record["task"]])
        if summary["best"]["number"] != old["best"]["number"]:
            raise ValueError(f"{name}: best trial is now {summary['best']['number']}, was {old['best']['number']} "
                             f"when tested; rerun the lab to test the new best")
        if record["task"] in ("widths", "formats"):
            summary["bits_table"] = lab3.bits_table(study)
        record["studies"][name] = {**old, **summary}
    if record["task"] == "compress":
        record["compression_cost"] = {v: lab2.compression_cost(record, v) for v in lab2.VARIANTS}
    record["commits"] = record_commits(record)
    write_json(path, record)
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flow.labs.refresh", description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="+", type=Path, help="results JSON of lab 2 or lab 3")
    ap.add_argument("--storage", default=None, help="the studies' storage (default: the record's)")
    a = ap.parse_args(argv)
    try:
        for path in a.records:
            record = refresh(path, a.storage)
            print(f"{path}: {len(record['studies'])} studies refreshed; commits {record['commits']}")
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"refresh: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
