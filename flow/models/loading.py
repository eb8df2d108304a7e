"""A user's model: a Python entry point returning an nn.Module, and weights from a checkpoint.

Checkpoints load safely: a state_dict through ``torch.load(weights_only=True)`` or a
safetensors file; nothing is unpickled.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
from pathlib import Path

import torch
from torch import nn


class ModelError(ValueError):
    """A model or checkpoint that cannot be used; the message says what to change."""


def from_entry_point(spec: str) -> nn.Module:
    """Call ``package.module:function`` (no arguments) and return the nn.Module it builds."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ModelError(f"model.entry_point {spec!r} must look like package.module:function")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would: the user's own folder is importable
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # an import runs user code: any failure is the user's to fix
        raise ModelError(f"model.entry_point {spec!r}: cannot import {module_name} ({type(error).__name__}: "
                         f"{error}); check the module path and that its folder is on PYTHONPATH") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ModelError(f"model.entry_point {spec!r}: {module_name} has no function {function_name!r}")
    model = function()
    if not isinstance(model, nn.Module):
        raise ModelError(f"model.entry_point {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def entry_point_fingerprint(spec: str) -> str:
    """A hash of the entry point's source file, so a cached training follows edits to the model code."""
    module = sys.modules.get(spec.partition(":")[0])
    source = inspect.getsourcefile(module) if module is not None else None
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()[:12] if source else ""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a state_dict file (.pt/.pth via weights_only) or a .safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model.checkpoint {str(path)!r} is not a file; save one with "
                         f"torch.save(model.state_dict(), path)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelError(f"model.checkpoint {path} is not a state_dict flow can load safely "
                         f"({type(error).__name__}: {str(error).splitlines()[0][:200]}); save "
                         f"model.state_dict() with torch.save, or a .safetensors file") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint wrapping the weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"model.checkpoint {path} holds {type(state).__name__}, not a state_dict of tensors")
    return state


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load weights into ``model``; keys and shapes must match exactly."""
    state = read_state_dict(path)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = [f"missing {', '.join(missing[:4])}" if missing else "",
                 f"unexpected {', '.join(unexpected[:4])}" if unexpected else "",
                 f"shape {', '.join(wrong[:3])}" if wrong else ""]
        raise ModelError(f"model.checkpoint {path} does not match the model ({'; '.join(p for p in parts if p)}); "
                         f"save model.state_dict() of the same architecture")
    model.load_state_dict(state)
    return model.eval()
