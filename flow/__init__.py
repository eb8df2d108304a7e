"""flow: a hardware-aware RTL generation toolflow for PyTorch models.

``flow.compile(model, example_inputs, quant=..., parallelism=...)`` returns an in-memory
``Design``: its fake-quant model, exact reference, and ``emit``/``simulate``/``estimate``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flow.design.compile import Design

__version__ = "0.1.0"


def compile(model: Any, example_inputs: Any, quant: dict | None = None,  # noqa: A001
            parallelism: dict | None = None, name: str = "flow_design") -> Design:
    """Compile a PyTorch model to a hardware design (see ``flow.design.compile.compile``)."""
    from flow.design.compile import compile as compile_model  # torch loads only when used

    return compile_model(model, example_inputs, quant, parallelism, name)
