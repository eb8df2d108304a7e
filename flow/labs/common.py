"""Shared lab plumbing: presets, run metadata and atomic results-JSON writing."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import transformers

from flow.paths import current_commit, portable
from flow.train.device import DEVICES, describe_device, use_device

PRESETS = ("smoke", "full")
#: Accuracy at or below which a trial or model counts as "at chance" on balanced binary IMDb: 0.52 is
#: about 1.3 standard errors above 0.5 on 1,000 reviews, so a model that learned nothing rarely exceeds it.
CHANCE = 0.52


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    return preset


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> (0, 1, 2); anything else is a one-line error."""
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--seeds {text!r} is not a comma-separated list of integers; e.g. --seeds 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds {text!r} needs distinct non-negative integers; e.g. --seeds 0,1,2")
    return seeds


def run_metadata() -> dict[str, Any]:
    """Versions, host and the commit this run started on, so every results file says what produced it."""
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": current_commit(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "device": describe_device(),
        "cpu_threads": torch.get_num_threads(),
        "host_cpus": os.cpu_count(),
    }


def relative_paths(value: Any) -> Any:
    """``value`` with every string made :func:`~flow.paths.portable` (dicts and lists walked)."""
    if isinstance(value, str):
        return portable(value)
    if isinstance(value, dict):
        return {key: relative_paths(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [relative_paths(item) for item in value]
    if isinstance(value, Path):
        return portable(str(value))
    return value


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write JSON atomically (temp file then rename): never a half-written results file; paths
    under or beside the checkout are written relative to it, so results name no machine's folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(relative_paths(payload), indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``path`` (``<path>.lock``) so processes take turns on it."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_json(path: str | Path, record: dict[str, Any],
                merge: Callable[[dict[str, Any] | None, dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Write ``merge(on_disk, record)`` under the file's lock and return it: several processes (one
    per seed or study, on one GPU, say) add their parts to one results file without losing any."""
    path = Path(path)
    with locked(path):
        disk = json.loads(path.read_text()) if path.exists() else None
        merged = merge(disk, record)
        write_json(path, merged)
    return merged


def lab_arguments(ap: argparse.ArgumentParser, lab: str, search: bool = False) -> None:
    """The flags every lab takes (--preset, --out, --imdb-dir, --threads, --no-progress) and, for the
    Optuna labs, --storage and --worker."""
    ap.add_argument("--preset", choices=list(PRESETS), default="smoke")
    if search:
        ap.add_argument("--storage", default=None, help=f"a .db path, journal:<file> or an Optuna storage URL "
                                                        f"(default results/{lab}/studies.db)")
        ap.add_argument("--worker", type=int, default=0, help="join the existing studies as extra worker N (N >= 1)")
        ap.add_argument("--cluster", default=None, help="run each study's trials as tasks on a Dask cluster: local:N "
                                                        "or tcp://host:port (default: in this process)")
    ap.add_argument("--out", default=None, help=f"output folder (default results/{lab})")
    ap.add_argument("--imdb-dir", default=None, help="local IMDb folder (else $FLOW_IMDB_DIR or ../shared/data/imdb)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--device", default="cpu", help=f"where models train and evaluate: {', '.join(DEVICES)} or cuda:N "
                                                    f"(default cpu)")
    ap.add_argument("--no-progress", action="store_true")


def run_lab(lab: str, threads: int | None, work: Callable[[], Any], device: str = "cpu") -> int:
    """Run a lab's work with ``threads`` torch threads on ``device``; a bad input or a missing file is
    one line, exit 2."""
    if threads:
        torch.set_num_threads(threads)
    try:
        use_device(device)
        work()
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"{lab}: {exc}", file=sys.stderr)
        return 2
    return 0
