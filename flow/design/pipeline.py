"""emit-rtl: train (cached), quantize, capture, lower, emit, write vectors and reports."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from flow.compiler.hardware_graph import HardwareGraph
from flow.config.schema import DesignConfig
from flow.data.tabular import load_split
from flow.design.compile import compile_config
from flow.design.train import accuracy, fit, trained_float_model
from flow.emit.design_folder import check_replaceable


@dataclass
class EmitResult:
    folder: Path
    graph: HardwareGraph
    report: dict[str, Any]


def emit_design(config: DesignConfig, config_path: str = "(defaults)",
                log: Callable[[str], None] = print) -> EmitResult:
    """Run the whole flow for one design config; returns where it went and what it measured."""
    start = time.perf_counter()
    folder = config.design.folder
    check_replaceable(folder)  # refuse before any work, not after
    d = config.dataset
    data = load_split(d.name, d.path, d.test_fraction, d.seed)
    float_model = trained_float_model(config, data, log=log)
    float_acc = accuracy(float_model, data.x_test, data.y_test)

    design = compile_config(float_model, data.x_test[:2], config)
    hw = design.graph
    quant_model = design.fake_quant_model()
    ptq_acc = accuracy(quant_model, data.x_test, data.y_test)
    t = config.training
    if t.qat_epochs > 0:
        fit(quant_model, data, t.qat_epochs, t.qat_lr, t.batch_size, t.seed, desc="QAT")
        log(f"QAT: {t.qat_epochs} epochs, accuracy {ptq_acc:.4f} -> "
            f"{accuracy(quant_model, data.x_test, data.y_test):.4f}")
    quant_acc = accuracy(quant_model, data.x_test, data.y_test)

    with torch.no_grad():
        fake = quant_model(data.x_test)
    exact = design.reference(design.quantize_inputs(data.x_test))
    matches = bool(torch.equal(fake, hw.last.out_format.dequantize(exact)))
    if not matches:
        log("WARNING: the exact reference differs from the fake-quant model; sums may exceed float32")
    report = design.emit(folder, data.x_test, data.y_test, source=config_path,
                         yosys_timeout=config.estimate.timeout if config.estimate.resources else None,
                         log=log, fields={
                              "config_path": config_path, "config": config.to_dict(),
                              "training_hash": config.training_hash(),
                              "accuracy": {"float": float_acc, "ptq": ptq_acc, "quantized": quant_acc},
                              "reference_matches_fake_quant": matches}, started=start)
    log(summary(report, folder))
    return EmitResult(folder, hw, report)


def summary(report: dict[str, Any], folder: Path) -> str:
    acc = report["accuracy"]
    lines = [f"design {report['design']} -> {folder}/",
             f"  accuracy: float {acc['float']:.4f}, quantized {acc['quantized']:.4f}, "
             f"hardware reference {acc['hardware_reference']:.4f} ({report['vectors']} test vectors)"]
    for row in report["stages"]:
        extra = f" w {row['weight_format']} acc {row['accumulator']}" if "weight_format" in row else ""
        lines.append(f"  {row['name']:>12}: {row['kind']:<10} {row['in_format']} -> {row['out_format']}{extra}"
                     f"  par {row['in_par']}x{row['out_par']}  II {row['initiation_interval']}")
    lines += [f"  {name:>12}: {why}" for name, why in report.get("elided", {}).items()]
    c = report["cycles"]
    lines.append(f"  cycles: II {c['initiation_interval']}, latency {c['latency_estimate']} (cycle model); "
                 f"simulate with `flow sim {folder}`")
    if report["resources"]:
        lines.append("  resources: " + ", ".join(f"{k} {v}" for k, v in report["resources"].items()))
    return "\n".join(lines)
