"""Write a design folder atomically: build it in a temporary sibling, then move it into place.

A folder flow wrote carries a marker file; flow refuses to replace a folder without it, so a
user's own files are never overwritten, and a half-written design never looks complete.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MARKER = ".flow-design"


class OutputError(ValueError):
    """The output folder cannot be (re)written safely."""


def check_replaceable(destination: Path) -> None:
    """Refuse early when ``destination`` holds something flow did not write."""
    if destination.exists():
        if not destination.is_dir():
            raise OutputError(f"{destination} exists and is not a folder; choose another design name or remove it")
        if any(destination.iterdir()) and not (destination / MARKER).exists():
            raise OutputError(f"{destination} holds files flow did not write; choose another "
                              f"design.output_dir/design.name or move those files away")


@contextmanager
def atomic_folder(destination: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``destination``, on error it vanishes."""
    check_replaceable(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.tmp-", dir=destination.parent))
    try:
        yield tmp
        (tmp / MARKER).write_text("written by flow; the folder is replaced on the next emit\n")
        check_replaceable(destination)
        old = None
        if destination.exists():
            old = destination.with_name(f".{destination.name}.old-{tmp.name[-8:]}")
            destination.rename(old)
        tmp.rename(destination)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
