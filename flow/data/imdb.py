"""IMDb reviews from the Hugging Face hub when reachable, otherwise from a local folder.

The local folder holds `train.jsonl.gz` and `test.jsonl.gz` (fields `text`, `label`); it is chosen
by argument, then `$FLOW_IMDB_DIR`, then `<repo>/../shared/data/imdb` (where CI keeps it).
"""

from __future__ import annotations

import gzip
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from flow.hub import hub_status
from flow.paths import REPO_ROOT

ENV_VAR = "FLOW_IMDB_DIR"
FLAG = "--imdb-dir"
FILES = ("train.jsonl.gz", "test.jsonl.gz")
DEFAULT_LOCAL = REPO_ROOT.parent / "shared" / "data" / "imdb"


@dataclass
class TextSplit:
    """Parallel lists of review texts and labels (0 = negative, 1 = positive)."""

    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, n: int | None, seed: int = 0) -> TextSplit:
        """A seeded random sample of n reviews (all of them, shuffled, when n is None or too big)."""
        idx = list(range(len(self)))
        random.Random(seed).shuffle(idx)
        idx = idx[: n if n is not None else len(idx)]
        return TextSplit([self.texts[i] for i in idx], [self.labels[i] for i in idx])


@dataclass
class IMDb:
    """The train and test splits and where they came from (`hub` or the local folder path)."""

    train: TextSplit
    test: TextSplit
    source: str


def local_dir(path: str | os.PathLike | None = None) -> Path | None:
    """The local IMDb folder to use: the argument, else $FLOW_IMDB_DIR, else the CI default if present."""
    if path is not None:
        return Path(path)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return DEFAULT_LOCAL if DEFAULT_LOCAL.is_dir() else None


def load_local(path: str | os.PathLike) -> IMDb:
    """Read both splits from a folder of `train.jsonl.gz` / `test.jsonl.gz`; one-line errors otherwise."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"IMDb folder {folder} does not exist; pass {FLAG} DIR or set {ENV_VAR} to a folder holding {' and '.join(FILES)}"
        )
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"IMDb folder {folder} lacks {', '.join(missing)}; point {FLAG} or {ENV_VAR} at a folder holding "
            f"{' and '.join(FILES)} (one JSON object per line with fields text, label)"
        )
    return IMDb(_read_jsonl(folder / FILES[0]), _read_jsonl(folder / FILES[1]), str(folder))


def _read_jsonl(path: Path) -> TextSplit:
    texts: list[str] = []
    labels: list[int] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text, label = row["text"], int(row["label"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{path}:{lineno}: not a review record ({type(exc).__name__}); each line must be JSON with text and label"
                ) from None
            if label not in (0, 1):
                raise ValueError(f"{path}:{lineno}: label {label} is not 0 or 1; IMDb labels are 0 = negative, 1 = positive")
            texts.append(text)
            labels.append(label)
    if not texts:
        raise ValueError(f"{path} holds no reviews; point {FLAG} or {ENV_VAR} at the IMDb folder")
    return TextSplit(texts, labels)


def load_hub() -> IMDb:
    """`datasets.load_dataset("imdb")`; raises RuntimeError with the reason when unavailable."""
    reachable, why = hub_status()
    if not reachable:
        raise RuntimeError(why)
    try:
        import datasets  # optional: pip install 'flow[hub]'
    except ImportError:
        raise RuntimeError("the `datasets` package is not installed (pip install 'flow[hub]')") from None
    try:
        ds = datasets.load_dataset("imdb")
    except Exception as exc:  # noqa: BLE001 - any hub/dataset failure means: fall back
        raise RuntimeError(f"datasets.load_dataset('imdb') failed: {type(exc).__name__}: {str(exc)[:120]}") from None
    return IMDb(
        TextSplit(list(ds["train"]["text"]), [int(x) for x in ds["train"]["label"]]),
        TextSplit(list(ds["test"]["text"]), [int(x) for x in ds["test"]["label"]]),
        "hub",
    )


def load_imdb(source: Literal["auto", "hub", "local"] = "auto", path: str | os.PathLike | None = None) -> IMDb:
    """Load IMDb: `auto` uses an explicit local path first, then the hub, then the default local folder."""
    if source not in ("auto", "hub", "local"):
        raise ValueError(f"unknown IMDb source {source!r}; use auto, hub or local")
    if source == "local" or (source == "auto" and (path is not None or os.environ.get(ENV_VAR))):
        folder = local_dir(path)
        if folder is None:
            raise FileNotFoundError(
                f"no local IMDb copy: pass {FLAG} DIR or set {ENV_VAR} to a folder holding {' and '.join(FILES)}"
            )
        return load_local(folder)
    try:
        return load_hub()
    except RuntimeError as exc:
        if source == "hub":
            raise RuntimeError(f"IMDb from the hub failed: {exc}; use a local copy via {FLAG} or {ENV_VAR}") from None
        hub_reason = str(exc)
    folder = local_dir(None)
    if folder is None:
        raise FileNotFoundError(
            f"IMDb not found: hub unavailable ({hub_reason}) and no local copy; pass {FLAG} DIR or set {ENV_VAR} "
            f"to a folder holding {' and '.join(FILES)}, or make the Hugging Face hub reachable"
        )
    return load_local(folder)


def train_val_split(split: TextSplit, val_fraction: float = 0.1, seed: int = 0) -> tuple[TextSplit, TextSplit]:
    """Seeded, stratified held-out validation split (searches select on it, never on the test set)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction {val_fraction} must lie strictly between 0 and 1")
    rng = random.Random(seed)
    train_idx: list[int] = []
    val_idx: list[int] = []
    for label in sorted(set(split.labels)):
        idx = [i for i, y in enumerate(split.labels) if y == label]
        rng.shuffle(idx)
        n_val = round(len(idx) * val_fraction)
        val_idx += idx[:n_val]
        train_idx += idx[n_val:]
    rng.shuffle(train_idx)
    rng.shuffle(val_idx)
    pick = lambda ids: TextSplit([split.texts[i] for i in ids], [split.labels[i] for i in ids])
    return pick(train_idx), pick(val_idx)
