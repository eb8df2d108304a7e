"""Write a design folder (atomically): its RTL, test vectors with the exact reference's outputs,
optional Yosys resources, report.json and report.md. ``Design.emit`` calls it; the emit-rtl
pipeline goes through ``Design.emit``."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from flow.compiler.hardware_graph import HardwareGraph
from flow.emit.design_folder import atomic_folder
from flow.emit.report import stage_rows, write_reports
from flow.emit.rtl import emit_rtl
from flow.emit.vectors import Vectors, write_vectors


def write_design(folder: Path, hw: HardwareGraph, name: str, x_codes: torch.Tensor, labels: torch.Tensor, *,
                 source: str, fields: dict[str, Any], yosys_timeout: float | None = None,
                 log: Callable[[str], None] = print, started: float | None = None) -> dict[str, Any]:
    """Emit ``hw`` as design ``name`` into ``folder`` (atomically): RTL, test vectors with the
    exact reference's outputs, optional Yosys resources, report.json and report.md."""
    start = time.perf_counter()
    y_codes = hw.forward_codes(x_codes)
    stream_in, last = hw.input, hw.last
    top = f"{name}_top"
    with atomic_folder(folder) as tmp:
        files = emit_rtl(hw, name, tmp / "rtl")
        write_vectors(tmp / "vectors", Vectors(x_codes, y_codes, labels, {
            "top": top, "in_width": stream_in.fmt.width, "in_signed": stream_in.fmt.signed,
            "in_par": stream_in.par, "out_width": last.out_format.width, "out_signed": last.out_format.signed,
            "out_par": last.out_par, "in_features": stream_in.features * hw.sequence,
            "out_features": last.out_features * hw.out_sequence,
            "vectors": len(labels), "initiation_interval": hw.initiation_interval,
            "latency": hw.latency_estimate,
        }))
        resources = None
        if yosys_timeout is not None:
            from flow.estimate.yosys import synthesize_xilinx
            log("estimating resources with Yosys synth_xilinx ...")
            resources = synthesize_xilinx([tmp / "rtl" / f for f in files], top, timeout=yosys_timeout,
                                          log_path=tmp / "yosys.log")
        report = {"design": name, "top": top, "config_path": source, "vectors": len(labels), **fields}
        report["accuracy"] = {**report.get("accuracy", {}),
                              "hardware_reference": (y_codes.argmax(dim=1) == labels).float().mean().item()}
        report.update(stages=stage_rows(hw), elided=dict(hw.elided), resources=resources, files=files,
                      cycles={"initiation_interval": hw.initiation_interval, "latency_estimate": hw.latency_estimate,
                              **({"initiation_interval_max": hw.initiation_interval_max, "sequence": hw.sequence}
                                 if hw.sequence > 1 else {})},
                      emit_seconds=round(time.perf_counter() - (started or start), 2))
        write_reports(tmp, report)
    return report
