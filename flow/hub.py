"""Fail-fast access to the Hugging Face hub: probe once, never hang, and say why it was skipped.

`FLOW_OFFLINE=1` (or `HF_HUB_OFFLINE=1`) skips the hub without a network probe.
"""

from __future__ import annotations

import functools
import os
import socket

HUB_HOST = "huggingface.co"


def hub_status(timeout_s: float = 2.0) -> tuple[bool, str]:
    """Return (reachable, reason): the offline variables first, then a cached short TCP probe."""
    for var in ("FLOW_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return False, f"{var} is set"
    return _probe(timeout_s)


@functools.lru_cache(maxsize=4)
def _probe(timeout_s: float) -> tuple[bool, str]:
    """One TCP connect to the hub with a timeout; cached per process so it runs once."""
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout_s):
            return True, f"{HUB_HOST} reachable"
    except OSError as exc:
        return False, f"{HUB_HOST} unreachable ({type(exc).__name__}: {exc})"


def hub_reachable() -> bool:
    """True when the hub answered the probe."""
    return hub_status()[0]
