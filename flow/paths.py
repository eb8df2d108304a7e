"""Well-known locations: the repository root, the git-ignored cache and the results folder.

Every path can be overridden (argument or environment variable) so nothing is hard-coded.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def portable(text: str) -> str:
    """``text`` with absolute paths under the checkout (or beside it) made relative to the checkout,
    so committed results name no machine's folders (``/x/repo/results/a`` -> ``results/a``,
    ``/x/sibling/file`` -> ``../sibling/file``)."""
    root = str(REPO_ROOT)
    text = re.sub(re.escape(root) + r"(/|(?=$|[\s\"'),;]))", lambda m: "" if m.group(1) else ".", text)
    parent = str(REPO_ROOT.parent)
    return text.replace(parent + "/", "../") if parent != "/" else text


@functools.cache
def current_commit() -> str | None:
    """The commit of the code this process runs: the checkout's short HEAD when first asked, with
    ``+dirty`` when flow/ differs from it (None outside git); $FLOW_COMMIT when set, for a copy of the
    checkout without its history (on another machine). Read once, as the loaded code does not change."""
    if os.environ.get("FLOW_COMMIT"):
        return os.environ["FLOW_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=5, check=False).stdout.strip() or None
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "flow"], cwd=REPO_ROOT,
                               timeout=5, check=False).returncode == 1
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if head and dirty else head


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
