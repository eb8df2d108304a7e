"""Which device training and evaluation run on: the CPU by default, a CUDA GPU when asked
(``--device cuda``), chosen once per process so the labs need no device plumbing of their own."""

from __future__ import annotations

from collections.abc import Mapping

import torch

DEVICES = ("cpu", "cuda", "auto")
_current = torch.device("cpu")


def use_device(name: str) -> torch.device:
    """Make ``name`` (cpu, cuda, cuda:N or auto: cuda when present) the device of every later
    train/evaluate call; a GPU that is not there is a one-line error."""
    global _current
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; use one of {', '.join(DEVICES)} (or cuda:N)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA GPU; use --device cpu")
    _current = torch.device(name)
    return _current


def current_device() -> torch.device:
    """The device chosen by :func:`use_device` (the CPU until then)."""
    return _current


def describe_device() -> str:
    """``cpu`` or the GPU's name, for run metadata."""
    if _current.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(_current)})"
    return "cpu"


def to_device(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A batch of keyword tensors on the current device (unchanged on the CPU)."""
    if _current.type == "cpu":
        return dict(batch)
    return {key: value.to(_current, non_blocking=True) for key, value in batch.items()}
