"""Design fuzzer: `python -m tests.fuzz --minutes 30 --workers 2` (also `make fuzz-designs`).

Hypothesis draws whole designs (tests.fuzz.strategies); each is emitted, simulated on its
whole vector set with random gaps and backpressure, and checked (tests.fuzz.check). The first
failure is shrunk by Hypothesis to a small reproducer, saved to tests/corpus/ (which
`make test` replays) and printed with the command that replays it. Every design checked is
logged; the run's totals go to results/fuzz/summary.json.

`--rtl-dir DIR` fuzzes a copy of the component library (a mutant, to show the fuzzer bites);
`--replay FILE...` checks corpus entries only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flow.cluster import ClusterError, open_executor

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus"
BATCH = 12  # designs per Hypothesis run; a fresh seed each run keeps the draws varied
FAST_BUILD = "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"  # short simulations: compile time dominates
SHRINK_MINUTES = 15  # each shrink step is a Verilator build; Hypothesis' own cap (5 min) leaves designs big


def features(spec) -> list[str]:
    """The design classes a spec exercises (for the coverage table of the summary)."""
    from tests.fuzz.spec import TRANSFORMER_OPS, lockstep_concat

    found = [f"depth {len(spec.layers)}"] + (["attention key mask (second input)"] if spec.mask else [])
    previous_out, after_lockstep = None, False
    for layer, (n_in, in_par, _) in zip(spec.layers, spec.streams()):
        fmts = {"in": layer.data_in, "weight": layer.weight, "bias": layer.bias, "out": layer.data_out}
        for role, (width, frac, signed) in fmts.items():
            found.append(f"{role} {'signed' if signed else 'unsigned'}")
            if width <= 2:
                found.append(f"{role} width {width}")
            if frac < 0:
                found.append(f"{role} frac < 0")
            if frac > width:
                found.append(f"{role} frac > width")
        found += [f"rounding {layer.rounding}", f"overflow {layer.overflow}"]
        for act in layer.activation.split("+"):
            if act in TRANSFORMER_OPS:  # the stream's vector is the row, folded into out_par-element beats
                found.append(f"{act} layer, " + ("one beat a row" if layer.out_par == layer.out_features else
                                                 "row folded into beats"))
            else:
                found.append(f"{act} on {'signed' if layer.data_out[2] else 'unsigned'}")
        if layer.activation.count("+") and "dropout" not in layer.activation:
            found.append("two activations in a row")
        par = [in_par, layer.out_par]
        found.append("fully parallel layer" if par == [n_in, layer.out_features] else
                     "one multiplier per cycle" if par == [1, 1] else "partly parallel layer")
        if previous_out is not None and previous_out != layer.data_in:
            found.append("cast between layers")
        if not layer.has_bias:
            found.append("no bias")
        if layer.multiplier == "auto" and par == [n_in, layer.out_features]:
            found.append(f"shift-add layer, register every {layer.pipeline_every or 'no'} level(s)")
        if layer.join != "none":
            found.append(f"{layer.join} join" + (" with a cast" if layer.join == "concat" and
                                                  layer.join_out not in (layer.data_out, previous_out) else ""))
        if lockstep_concat(layer, n_in, in_par):
            found.append("lockstep concat (one beat of both inputs)")
        if layer.attention is not None:
            a = layer.attention
            found += [f"attention block, sequence {spec.sequence}", f"attention scale 2^-{a['shift']}",
                      "Q·Kᵀ " + ("one group a row" if a["qk_par"] == spec.sequence else "row folded into groups"),
                      "A·V " + ("one group a row" if a["av_par"] == layer.out_features else "row folded into groups")]
        elif spec.sequence > 1:
            found.append("per-token layer of a sequence design")
        if after_lockstep and layer.multiplier == "auto" and par == [n_in, layer.out_features]:
            found.append("shift-add layer reading a lockstep concat")
        after_lockstep = lockstep_concat(layer, n_in, in_par)
        previous_out = layer.join_out if layer.join != "none" else layer.data_out
    return sorted(set(found))


def save_corpus_entry(spec, failure: str, designs_until_found: int, rtl_dir: str | None, shrunk: bool) -> Path:
    """Keep a failing design forever: make test replays every file of tests/corpus/."""
    CORPUS.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=REPO).stdout.strip()
    path = CORPUS / f"design-{spec.key}.json"
    path.write_text(json.dumps({
        "spec": spec.to_json(),
        "found": {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "commit": commit,
                  "rtl_dir": rtl_dir or "hw/rtl", "failure": failure,
                  "designs_until_found": designs_until_found, "shrunk": shrunk},
        "fix": "",
    }, indent=2) + "\n")
    return path


def fuzz_worker(minutes: float, seed: int, log_path: Path, keep: Path, rtl_dir: str | None,
                shrink: bool = True) -> int:
    """Draw, check and log designs until time is up or one fails (then shrink and save it)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis.internal.conjecture import engine

    from tests.fuzz.check import check_design
    from tests.fuzz.spec import summary_line
    from tests.fuzz.strategies import fuzz_designs

    engine.MAX_SHRINKING_SECONDS = SHRINK_MINUTES * 60  # an internal constant; the default is 300 s
    deadline = time.monotonic() + minutes * 60
    started = time.monotonic()
    seen: set[str] = set()
    last_failure: dict[str, Any] = {}
    log_path.parent.mkdir(parents=True, exist_ok=True)

    def check(spec) -> None:
        if time.monotonic() > deadline and not last_failure:
            return  # time is up: let Hypothesis finish the batch without work
        t0 = time.perf_counter()
        record: dict[str, Any] = {"key": spec.key, "spec": spec.to_json(), "features": features(spec),
                                  "shrinking": bool(last_failure)}
        try:
            record.update(check_design(spec, keep=keep), ok=True)
        except Exception as error:  # every exception is a finding: log it, let Hypothesis shrink it
            record.update(ok=False, failure=f"{type(error).__name__}: {error}".splitlines()[0][:600])
            last_failure.update(spec=spec, failure=record["failure"],
                                designs=last_failure.get("designs", len(seen) + 1))
            raise
        finally:
            record["seconds"] = round(time.perf_counter() - t0, 2)
            with open(log_path, "a") as log:
                log.write(json.dumps(record) + "\n")
            first = spec.key not in seen
            seen.add(spec.key)
            status = "ok" if record["ok"] else "FAIL"
            if first or not record["ok"]:
                print(f"[seed {seed} #{len(seen)} {(time.monotonic() - started) / 60:.1f} min] {status} "
                      f"{record['seconds']:.1f} s  {summary_line(spec)[:200]}"
                      + (f"\n    {record['failure']}" if not record["ok"] else ""), flush=True)

    batch = 0
    while time.monotonic() < deadline:
        test = settings(max_examples=BATCH, deadline=None, database=None, print_blob=False,
                        suppress_health_check=list(HealthCheck),
                        phases=[Phase.generate, Phase.shrink] if shrink else [Phase.generate])(
            given(fuzz_designs())(check))
        try:
            hypothesis_seed(seed * 100_000 + batch)(test)()
        except Exception:
            spec = last_failure["spec"]  # Hypothesis runs the shrunk example last
            path = save_corpus_entry(spec, last_failure["failure"], last_failure["designs"], rtl_dir, shrink)
            print(f"\nFAILED after {last_failure['designs']} designs; "
                  f"{'shrunk reproducer' if shrink else 'reproducer as drawn (--no-shrink)'}:\n  {summary_line(spec)}\n"
                  f"  {last_failure['failure']}\n  saved {path.relative_to(REPO)}; replay with\n"
                  f"  {'FLOW_RTL_DIR=' + rtl_dir + ' ' if rtl_dir else ''}python -m tests.fuzz --replay "
                  f"{path.relative_to(REPO)}\n  spec: {json.dumps(spec.to_json())}", flush=True)
            return 1
        batch += 1
    return 0


def replay(paths: list[Path]) -> int:
    from tests.fuzz.check import check_design
    from tests.fuzz.spec import DesignSpec, summary_line

    failures = 0
    for path in paths:
        spec = DesignSpec.from_json(json.loads(path.read_text())["spec"])
        try:
            result = check_design(spec)
            print(f"ok   {path.name}: {result['elements_compared']} elements, 0 mismatches  {summary_line(spec)}")
        except Exception as error:
            failures += 1
            print(f"FAIL {path.name}: {type(error).__name__}: {error}\n     {summary_line(spec)}")
    return 1 if failures else 0


def summarize(logs: list[Path], minutes: float, workers: int, rtl_dir: str | None) -> dict[str, Any]:
    """Totals over every design the workers checked (each distinct design counted once)."""
    designs: dict[str, dict] = {}
    for log in logs:
        if log.exists():
            for line in log.read_text().splitlines():
                record = json.loads(line)
                if not record.get("shrinking") or record["key"] not in designs:
                    designs.setdefault(record["key"], record)
    records = list(designs.values())
    coverage = Counter(f for r in records for f in r["features"])
    return {
        "minutes": minutes, "workers": workers, "rtl_dir": rtl_dir or "hw/rtl",
        "designs": len(records), "passed": sum(r["ok"] for r in records),
        "failed": [{"key": r["key"], "failure": r["failure"]} for r in records if not r["ok"]],
        "elements_compared": sum(r.get("elements_compared", 0) for r in records),
        "mismatches": sum(r.get("mismatches", 0) for r in records),
        "vectors": sum(r.get("vectors", 0) for r in records),
        "mean_seconds_per_design": round(sum(r["seconds"] for r in records) / max(len(records), 1), 1),
        "coverage": dict(sorted(coverage.items())),
    }


@dataclass(frozen=True)
class FuzzJob:
    """One fuzz worker as an executor job (``--cluster``): its seed, time and options."""

    minutes: float
    seed: int
    out: Path
    rtl_dir: str | None
    shrink: bool


def run_fuzz_job(job: FuzzJob) -> tuple[int, str]:
    """Run one worker wherever the executor placed it; returns its exit code and its design log
    (so a worker on another machine still reports every design here)."""
    import torch

    os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} {FAST_BUILD}".strip()
    if job.rtl_dir:
        os.environ["FLOW_RTL_DIR"] = job.rtl_dir
    torch.set_num_threads(1)
    log = job.out / f"designs-seed{job.seed}.jsonl"
    log.unlink(missing_ok=True)
    code = fuzz_worker(job.minutes, job.seed, log, job.out / "failed", job.rtl_dir, shrink=job.shrink)
    return code, log.read_text() if log.exists() else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long each worker draws designs")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes (one seed each)")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000, help="first worker's seed")
    parser.add_argument("--rtl-dir", default=None, help="fuzz this copy of hw/rtl (e.g. a mutant)")
    parser.add_argument("--replay", nargs="*", type=Path, default=None, help="check these corpus files only")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "fuzz", help="logs and failing designs")
    parser.add_argument("--summary", type=Path, default=None, help="write the totals here (JSON)")
    parser.add_argument("--no-shrink", action="store_true", help="stop at the first failure as drawn")
    parser.add_argument("--cluster", default=None, help="run the --workers seeds as jobs on a Dask cluster: local:N or "
                                                        "tcp://host:port (default: subprocesses here)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rtl_dir:
        os.environ["FLOW_RTL_DIR"] = str(Path(args.rtl_dir).resolve())
        args.rtl_dir = str(Path(args.rtl_dir).resolve())
    os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} {FAST_BUILD}".strip()
    import torch
    torch.set_num_threads(1)
    if args.replay is not None:
        return replay(args.replay or sorted(CORPUS.glob("*.json")))
    log_of = lambda s: args.out / f"designs-seed{s}.jsonl"  # noqa: E731
    if args.cluster and not args.worker:
        seeds = [args.seed + i for i in range(args.workers)]
        jobs = [FuzzJob(args.minutes, s, args.out, args.rtl_dir, not args.no_shrink) for s in seeds]
        try:
            with open_executor(args.cluster) as executor:
                outcomes = list(executor.map(run_fuzz_job, jobs, label=lambda job: f"fuzz seed {job.seed}"))
        except ClusterError as error:
            print(f"fuzz: {error}", file=sys.stderr)
            return 2
        for s, (_, text) in zip(seeds, outcomes, strict=True):
            log_of(s).parent.mkdir(parents=True, exist_ok=True)
            log_of(s).write_text(text)
        code = max(c for c, _ in outcomes)
    elif args.worker or args.workers == 1:
        log_of(args.seed).unlink(missing_ok=True)
        code = fuzz_worker(args.minutes, args.seed, log_of(args.seed), args.out / "failed", args.rtl_dir,
                           shrink=not args.no_shrink)
        seeds = [args.seed]
    else:
        seeds = [args.seed + i for i in range(args.workers)]
        for s in seeds:
            log_of(s).unlink(missing_ok=True)
        procs = [subprocess.Popen([sys.executable, "-m", "tests.fuzz", "--worker", "--seed", str(s),
                                   "--minutes", str(args.minutes), "--out", str(args.out)]
                                  + (["--rtl-dir", args.rtl_dir] if args.rtl_dir else []), cwd=REPO)
                 for s in seeds]
        code = max(p.wait() for p in procs)
    if args.worker:
        return code
    summary = summarize([log_of(s) for s in seeds], args.minutes, len(seeds), args.rtl_dir)
    summary["seeds"] = seeds
    print(f"\n{summary['designs']} designs ({summary['passed']} passed), {summary['vectors']} vectors, "
          f"{summary['elements_compared']} elements compared, {summary['mismatches']} mismatches, "
          f"{len(summary['failed'])} failing designs; {summary['mean_seconds_per_design']} s per design")
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"summary: {args.summary}")
    return code


if __name__ == "__main__":
    sys.exit(main())
