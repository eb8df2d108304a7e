"""``flow.compile``: a PyTorch model and example inputs become an in-memory hardware ``Design``.

Nothing is written until ``Design.emit``. The CLI (`flow emit-rtl`), the labs, the fuzzer and
searches all go through this one entry point.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flow.compiler.build_graph import build_hardware_graph
from flow.compiler.hardware_graph import HardwareGraph
from flow.compiler.lower import lower
from flow.config.load import LAYER_QUANT_DEFAULTS, hardware_config
from flow.config.schema import DesignConfig
from flow.design.write import write_design
from flow.graph import capture
from flow.graph.capture import accepted_inputs


def _quiet(_: str) -> None:
    pass


@dataclass
class Design:
    """A quantized hardware graph with everything a user does with it."""

    name: str
    graph: HardwareGraph
    config: DesignConfig

    # ---- in memory ----
    def fake_quant_model(self) -> nn.Module:
        """The torch model computing the design's numbers in float (training, QAT, accuracy)."""
        return self.graph.fake_quant_model()

    def quantize_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Float inputs to the integer codes the hardware's input stream carries."""
        return self.graph.quantize_input(x)

    def reference(self, codes: torch.Tensor) -> torch.Tensor:
        """The exact integer reference: input codes to output codes, as the RTL computes them."""
        return self.graph.forward_codes(codes)

    @property
    def initiation_interval(self) -> int:
        return self.graph.initiation_interval

    @property
    def initiation_interval_max(self) -> int:
        """The widest interval between samples while they stream back to back (the II, except in a
        sequence design whose first samples leave further apart)."""
        return self.graph.initiation_interval_max

    @property
    def latency(self) -> int:
        return self.graph.latency_estimate

    # ---- on disk ----
    def emit(self, folder: str | Path, inputs: torch.Tensor, labels: torch.Tensor | None = None, *,
             source: str = "flow.compile", fields: dict[str, Any] | None = None,
             yosys_timeout: float | None = None, log: Callable[[str], None] = _quiet,
             started: float | None = None) -> dict[str, Any]:
        """Write the design into ``folder`` (atomically): RTL, test vectors of ``inputs`` with the
        reference's outputs, and reports. Without ``labels`` the reference's own argmax labels
        the vectors, so accuracies measure agreement with it. ``started`` (a perf_counter time)
        counts earlier work into the report's ``emit_seconds``. Returns the report."""
        x_codes = self.quantize_inputs(inputs)
        if labels is None:
            labels = self.reference(x_codes).argmax(dim=1)
            fields = {**(fields or {}), "labels": "the exact reference's argmax (no labels given)"}
        return write_design(Path(folder), self.graph, self.name, x_codes, labels, source=source,
                            fields=fields or {}, yosys_timeout=yosys_timeout, log=log, started=started)

    def simulate(self, folder: str | Path, vectors: int | None = None, seed: int = 1, gap: float = 0.3,
                 stall: float = 0.3, log: Callable[[str], None] = _quiet,
                 build_root: Path | None = None, engine: str = "bulk") -> dict[str, Any]:
        """Simulate an emitted folder of this design in Verilator against its vectors (``engine``:
        "bulk", a SystemVerilog source and sink at Verilator speed, or "cocotb", beat by beat)."""
        from flow.simulation.simulate import simulate_design

        return simulate_design(Path(folder), vectors, seed, gap, stall, log=log, build_root=build_root,
                               engine=engine)

    def estimate(self, folder: str | Path | None = None, timeout: float = 900.0) -> dict[str, int]:
        """Yosys synth_xilinx cell counts of the emitted RTL (emitted to a scratch folder if needed)."""
        from flow.estimate.yosys import synthesize_xilinx

        with tempfile.TemporaryDirectory() as scratch:
            if folder is None:
                folder = Path(scratch) / self.name
                width = self.graph.input.features * self.graph.sequence
                self.emit(folder, torch.zeros(1, width))
            rtl = Path(folder) / "rtl"
            files = [rtl / name for name in (rtl / "filelist.f").read_text().split()]
            return synthesize_xilinx(files, f"{self.name}_top", timeout=timeout)


def _as_inputs(model: nn.Module, example_inputs: Any) -> dict[str, Any]:
    """Example inputs as the keyword batch capture takes: a tensor, a tuple, or a dict."""
    if isinstance(example_inputs, dict):
        return example_inputs
    values = example_inputs if isinstance(example_inputs, tuple | list) else (example_inputs,)
    names = accepted_inputs(model)
    if len(values) > len(names):
        raise ValueError(f"{len(values)} example inputs but {type(model).__name__}.forward takes "
                         f"{len(names)} ({', '.join(names)}); pass one tensor per input")
    return dict(zip(names, values))


def compile(model: nn.Module, example_inputs: Any, quant: dict[str, Any] | None = None,  # noqa: A001
            parallelism: dict[str, Any] | None = None, name: str = "flow_design") -> Design:
    """Capture ``model`` on ``example_inputs`` (eval mode), lower it, and quantize it by ``quant``
    (MASE-style tables: ``default`` and per layer name, or ``by="type"``; a flat dict of layer
    keys is the default table) with ``parallelism`` (``in_par``/``out_par`` per layer)."""
    if quant is not None and quant and all(key in LAYER_QUANT_DEFAULTS for key in quant):
        quant = {"default": quant}
    return compile_config(model, example_inputs, hardware_config(quant, parallelism, name))


def compile_config(model: nn.Module, example_inputs: Any, config: DesignConfig) -> Design:
    """``compile`` with a whole design config (its quantization, parallelism and design name)."""
    model = model.eval()
    graph = capture(model, _as_inputs(model, example_inputs), mode="eval")
    hardware = build_hardware_graph(lower(graph, model), config)
    return Design(config.design.name, hardware, config)
