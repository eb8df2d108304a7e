"""Well-known locations: the repository root, the git-ignored cache and the results folder.

Every path can be overridden (argument or environment variable) so nothing is hard-coded.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Git-ignored cache for tokenizers and tokenized data: $FLOW_CACHE_DIR or <repo>/.cache/flow."""
    path = Path(os.environ.get("FLOW_CACHE_DIR", REPO_ROOT / ".cache" / "flow"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(lab: str, root: str | Path | None = None) -> Path:
    """Folder for one lab's results JSON and figures: <root or $FLOW_RESULTS_DIR or results>/<lab>."""
    base = Path(root) if root is not None else Path(os.environ.get("FLOW_RESULTS_DIR", REPO_ROOT / "results"))
    path = base / lab
    path.mkdir(parents=True, exist_ok=True)
    return path
