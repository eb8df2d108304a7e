"""Errors every layer of flow raises (so the op files, below the design configs, raise the same one)."""
from __future__ import annotations


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and the fix."""
