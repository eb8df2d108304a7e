"""Run labs 1-3 as many processes at once, one per seed, study or group of formats, so a machine
with many cores (and a GPU) finishes in minutes what one process would take hours for.

Each process writes its part of the shared results files (merged under a lock, see
:func:`flow.labs.common.update_json`) and its studies into one journal storage, so the result is
what the serial ``make lab1 lab2 lab3`` would have stored, and a stopped run resumes. Jobs wait
for the ones they need (lab 1's task 2 and lab 3 for lab 1's base models and task 1; lab 2's
task 2 for task 1's winning sampler); at the deadline every running job is stopped, to resume
later. One line per finished job.

``python -m flow.labs.fanout --preset full --device cuda --seeds 0,1,2 --jobs 14 --deadline 540``
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from flow.labs.common import PRESETS, parse_seeds
from flow.labs.lab2 import SAMPLER_ORDER, VARIANTS

#: Lab 3's task 2 formats split into groups of about equal cost, one process each (per seed).
FORMAT_GROUPS = (("fixed", "minifloat", "minifloat_ieee"), ("log", "block_fp", "binary"),
                 ("block_minifloat", "block_log", "ternary"))


@dataclass
class Job:
    """One process: its name, command line and the job groups it waits for."""

    name: str
    argv: list[str]
    after: tuple[str, ...] = ()
    group: str = ""
    process: subprocess.Popen | None = field(default=None, repr=False)
    started: float = 0.0
    returncode: int | None = None


def lab_jobs(preset: str, device: str, seeds: tuple[int, ...], storage: dict[str, str] | None = None,
             imdb_dir: str | None = None, lab2_sampler: str | None = None) -> list[Job]:
    """The jobs of labs 1-3 for ``seeds``; ``storage`` maps lab2/lab3 to their Optuna storages."""
    storage = storage or {}
    common = ["--preset", preset, "--device", device, "--threads", "1", "--no-progress",
              *(["--imdb-dir", imdb_dir] if imdb_dir else [])]

    def lab(module: str, *args: str) -> list[str]:
        extra = ["--storage", storage[module]] if module in storage else []
        return [sys.executable, "-m", f"flow.labs.{module}", *common, *extra, *args]

    jobs: list[Job] = []
    for seed in seeds:
        s = str(seed)
        jobs.append(Job(f"lab1-quantize-seed{s}", lab("lab1", "--task", "quantize", "--seeds", s), group="lab1-quantize"))
        jobs.append(Job(f"lab1-prune-seed{s}", lab("lab1", "--task", "prune", "--seeds", s), ("lab1-quantize",),
                        "lab1-prune"))
        for sampler in SAMPLER_ORDER:
            jobs.append(Job(f"lab2-samplers-{sampler}-seed{s}",
                            lab("lab2", "--task", "samplers", "--samplers", sampler, "--seeds", s), group="lab2-samplers"))
        for variant in VARIANTS:
            sampler_args = ["--sampler", lab2_sampler] if lab2_sampler else []
            jobs.append(Job(f"lab2-compress-{variant}-seed{s}",
                            lab("lab2", "--task", "compress", "--variants", variant, "--seeds", s, *sampler_args),
                            ("lab2-samplers",), "lab2-compress"))
        groups = FORMAT_GROUPS if preset == "full" else (("fixed", "log", "ternary"),)
        for index, formats in enumerate(groups):
            task = ["--task", "all"] if index == 0 else ["--task", "formats"]  # the first also runs task 1
            jobs.append(Job(f"lab3-{'widths-' if index == 0 else ''}{'-'.join(formats)}-seed{s}",
                            lab("lab3", *task, "--formats", ",".join(formats), "--seeds", s), ("lab1-quantize",),
                            "lab3"))
    return jobs


def run_jobs(jobs: list[Job], max_jobs: int, deadline_s: float, log_dir: Path, poll_s: float = 1.0) -> list[Job]:
    """Start jobs in order as their groups' dependencies finish, at most ``max_jobs`` at once;
    stop the running ones at the deadline (a lab resumes from what it stored)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    waiting, running, finished = list(jobs), [], []

    def group_done(group: str) -> bool:
        return not any(j.group == group for j in waiting + running)

    while waiting or running:
        for job in list(running):
            code = job.process.poll() if job.process else None
            if code is not None:
                job.returncode = code
                running.remove(job)
                finished.append(job)
                print(f"[{time.monotonic() - start:6.0f} s] {job.name}: exit {code} after "
                      f"{time.monotonic() - job.started:.0f} s", flush=True)
        if time.monotonic() - start > deadline_s:
            for job in running:
                job.process.send_signal(signal.SIGTERM)
            for job in running:
                try:
                    job.returncode = job.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    job.process.kill()
                    job.returncode = job.process.wait()
                print(f"[deadline] {job.name}: stopped after {time.monotonic() - job.started:.0f} s", flush=True)
            finished += running
            print(f"[deadline] not started: {', '.join(j.name for j in waiting) or 'none'}", flush=True)
            return finished
        for job in list(waiting):
            if len(running) >= max_jobs:
                break
            if all(group_done(g) for g in job.after):
                handle = (log_dir / f"{job.name}.log").open("w")
                job.process = subprocess.Popen(job.argv, stdout=handle, stderr=subprocess.STDOUT,
                                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
                job.started = time.monotonic()
                waiting.remove(job)
                running.append(job)
        time.sleep(poll_s)
    return finished


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flow.labs.fanout", description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=list(PRESETS), default="smoke")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (every job)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--labs", default="lab1,lab2,lab3",
                    help="which jobs to run: name prefixes, comma-separated (lab2, lab2-compress, lab1-prune-seed0)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes at once")
    ap.add_argument("--deadline", type=float, default=float("inf"), help="seconds; running jobs stop then")
    ap.add_argument("--lab2-storage", default=None, help="lab 2's Optuna storage (default its studies.db)")
    ap.add_argument("--lab3-storage", default=None, help="lab 3's Optuna storage (default its studies.db)")
    ap.add_argument("--lab2-sampler", default=None, help="lab 2 task 2's sampler (default: task 1's winner)")
    ap.add_argument("--imdb-dir", default=None)
    ap.add_argument("--log-dir", default="results/fanout_logs")
    a = ap.parse_args(argv)
    try:
        seeds = parse_seeds(a.seeds)
    except ValueError as exc:
        print(f"fanout: {exc}", file=sys.stderr)
        return 2
    storage = {k: v for k, v in (("lab2", a.lab2_storage), ("lab3", a.lab3_storage)) if v}
    labs = {part.strip() for part in a.labs.split(",") if part.strip()}
    jobs = [j for j in lab_jobs(a.preset, a.device, seeds, storage, a.imdb_dir, a.lab2_sampler)
            if any(j.name.startswith(prefix) for prefix in labs)]
    print(f"fanout: {len(jobs)} jobs, {a.jobs} at once, deadline {a.deadline} s, logs in {a.log_dir}", flush=True)
    finished = run_jobs(jobs, a.jobs, a.deadline, Path(a.log_dir))
    failed = [j.name for j in finished if j.returncode not in (0, None)]
    print(f"fanout: {len(finished) - len(failed)} of {len(jobs)} jobs ended cleanly"
          + (f"; not cleanly: {', '.join(failed)}" if failed else ""), flush=True)
    return 0 if not failed and len(finished) == len(jobs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
