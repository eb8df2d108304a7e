"""Where studies live: SQLite by default, any Optuna storage URL, or Optuna's journal file.

``open_storage`` takes a path or URL and returns what ``optuna.create_study(storage=...)`` takes:
- ``path/to/studies.db`` (or any path ending in .db / .sqlite): SQLite at that path;
- ``sqlite:///...``, ``postgresql://...``, ``mysql://...``: an RDB URL, as Optuna reads it;
- ``journal:path/to/file.log`` (or a path ending in .log / .jsonl): Optuna's JournalStorage on a
  file, which several processes (or machines on a shared file system) append to safely.
"""
from __future__ import annotations

from pathlib import Path

import optuna

RDB_SCHEMES = ("sqlite://", "postgresql", "mysql", "oracle", "mssql")


def open_storage(target: str | Path) -> str | optuna.storages.BaseStorage:
    """The storage a path or URL names (see the module docstring); one-line error otherwise."""
    text = str(target)
    if text.startswith(RDB_SCHEMES):
        return text
    if text.startswith("journal:") or text.endswith((".log", ".jsonl")):
        path = Path(text.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    if text.endswith((".db", ".sqlite", ".sqlite3")):
        path = Path(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path.resolve()}"
    raise ValueError(f"cannot tell which storage {text!r} is; pass a .db path (SQLite), journal:<file>, "
                     f"or an Optuna storage URL (sqlite:///..., postgresql://...)")
