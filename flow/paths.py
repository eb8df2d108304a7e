"""Well-known locations: the repository root, the git-ignored cache and the results folder.

Every path can be overridden (argument or environment variable) so nothing is hard-coded.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def work_root() -> Path:
    """Where caches, builds and results go by default: the checkout flow runs from, or, for an
    installed package, the current folder."""
    return REPO_ROOT if (REPO_ROOT / "pyproject.toml").is_file() else Path.cwd()


def cache_dir() -> Path:
    """Git-ignored cache for tokenizers, tokenized data and checkpoints: $FLOW_CACHE_DIR or <work root>/.cache/flow."""
    path = Path(os.environ.get("FLOW_CACHE_DIR", work_root() / ".cache" / "flow"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(lab: str, root: str | Path | None = None) -> Path:
    """Folder for one lab's results JSON and figures: <root or $FLOW_RESULTS_DIR or results>/<lab>."""
    base = Path(root) if root is not None else Path(os.environ.get("FLOW_RESULTS_DIR", work_root() / "results"))
    path = base / lab
    path.mkdir(parents=True, exist_ok=True)
    return path
