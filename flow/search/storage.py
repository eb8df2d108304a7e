"""Where studies live: SQLite by default, any Optuna storage URL, or Optuna's journal file.

``open_storage`` takes a path or URL and returns what ``optuna.create_study(storage=...)`` takes:
- ``path/to/studies.db`` (or any path ending in .db / .sqlite): SQLite at that path;
- ``sqlite:///...``, ``postgresql://...``, ``mysql://...``: an RDB URL, as Optuna reads it;
  ``postgresql://`` goes through psycopg 3 (``postgresql+psycopg://``, the driver ``make install``
  brings) and is opened at once with a 10 s connect timeout, so an unreachable server is a one-line
  error rather than a hang in the first trial;
- ``journal:path/to/file.log`` (or a path ending in .log / .jsonl): Optuna's JournalStorage on a
  file, which several processes (or machines on a shared file system) append to safely.
"""
from __future__ import annotations

from pathlib import Path

import optuna

RDB_SCHEMES = ("sqlite://", "postgresql", "mysql", "oracle", "mssql")
PG_CONNECT_TIMEOUT_S = 10
KINDS = "a .db path (SQLite), journal:<file>, or an Optuna storage URL (sqlite:///..., postgresql://...)"


def _open_postgres(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on PostgreSQL through psycopg 3; one-line error when it does not answer."""
    import sqlalchemy.exc

    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        url = f"postgresql+psycopg://{rest}"
    try:
        return optuna.storages.RDBStorage(
            url, engine_kwargs={"connect_args": {"connect_timeout": PG_CONNECT_TIMEOUT_S}})
    except sqlalchemy.exc.OperationalError as err:
        where = url.split("@")[-1]
        reason = str(err.orig).strip().splitlines()[0] if err.orig else type(err).__name__
        raise ValueError(f"storage postgresql://...@{where}: no PostgreSQL answered ({reason}); start it, "
                         f"or check the URL's host, port, user and database") from None


def open_storage(target: str | Path) -> str | optuna.storages.BaseStorage:
    """The storage a path or URL names (see the module docstring); one-line error otherwise."""
    text = str(target)
    if text.startswith(("postgresql", "postgres://")):
        return _open_postgres(text)
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
    raise ValueError(f"cannot tell which storage {text!r} is; pass {KINDS}")
