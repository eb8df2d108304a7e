"""emit-rtl: train (cached), quantize, capture, lower, emit, write vectors and reports."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from flow.data.digits import load_digits_split
from flow.design.config import config_hash
from flow.design.quantize import build_hardware_graph
from flow.design.train import accuracy, fit, trained_float_model
from flow.formats.fixed import dequantize
from flow.graph import capture
from flow.hardware.emit import emit_rtl
from flow.hardware.lower import lower
from flow.hardware.outputs import atomic_folder, check_replaceable
from flow.hardware.report import stage_rows, write_reports
from flow.hardware.stages import HardwareGraph
from flow.hardware.vectors import Vectors, write_vectors


@dataclass
class EmitResult:
    folder: Path
    graph: HardwareGraph
    report: dict[str, Any]


def design_folder(config: dict[str, Any]) -> Path:
    return Path(config["design"]["output_dir"]) / config["design"]["name"]


def emit_design(config: dict[str, Any], config_path: str = "(defaults)",
                log: Callable[[str], None] = print) -> EmitResult:
    """Run the whole flow for one design config; returns where it went and what it measured."""
    start = time.perf_counter()
    folder = design_folder(config)
    check_replaceable(folder)  # refuse before any work, not after
    data = load_digits_split(config["dataset"]["test_fraction"], config["dataset"]["seed"])
    float_model = trained_float_model(config, data, log=log)
    float_acc = accuracy(float_model, data.x_test, data.y_test)

    graph = capture(float_model, {"input": data.x_test[:2]}, mode="eval")
    layers = lower(graph, float_model)
    hw = build_hardware_graph(layers, config)
    quant_model = hw.fake_quant_model()
    ptq_acc = accuracy(quant_model, data.x_test, data.y_test)
    t = config["training"]
    if t["qat_epochs"] > 0:
        fit(quant_model, data, t["qat_epochs"], t["qat_lr"], t["batch_size"], t["seed"], desc="QAT")
        log(f"QAT: {t['qat_epochs']} epochs, accuracy {ptq_acc:.4f} -> "
            f"{accuracy(quant_model, data.x_test, data.y_test):.4f}")
    quant_acc = accuracy(quant_model, data.x_test, data.y_test)

    x_codes = hw.quantize_input(data.x_test)
    y_codes = hw.forward_codes(x_codes)
    hw_acc = (y_codes.argmax(dim=1) == data.y_test).float().mean().item()
    with torch.no_grad():
        fake = quant_model(data.x_test)
    matches = bool(torch.equal(fake, dequantize(y_codes, hw.stages[-1].out_format)))
    if not matches:
        log("WARNING: the exact reference differs from the fake-quant model; sums may exceed float32")

    first, last = hw.stages[0], hw.stages[-1]
    top = f"{config['design']['name']}_top"
    with atomic_folder(folder) as tmp:
        files = emit_rtl(hw, config["design"]["name"], tmp / "rtl", config_path)
        write_vectors(tmp / "vectors", Vectors(x_codes, y_codes, data.y_test, {
            "top": top, "in_width": first.in_format.width, "in_par": first.in_par,
            "out_width": last.out_format.width, "out_par": last.out_par,
            "in_features": first.in_features, "out_features": last.out_features,
            "vectors": len(data.y_test), "initiation_interval": hw.initiation_interval,
        }))
        resources = None
        if config["estimate"]["resources"]:
            from flow.estimate.yosys import synthesize_xilinx
            log("estimating resources with Yosys synth_xilinx ...")
            resources = synthesize_xilinx([tmp / "rtl" / f for f in files], top,
                                          timeout=config["estimate"]["timeout"],
                                          log_path=tmp / "yosys.log")
        report = {
            "design": config["design"]["name"], "top": top, "config_path": config_path,
            "config": config, "training_hash": config_hash(config, ("model", "dataset", "training")),
            "vectors": len(data.y_test),
            "accuracy": {"float": float_acc, "ptq": ptq_acc, "quantized": quant_acc,
                         "hardware_reference": hw_acc},
            "reference_matches_fake_quant": matches,
            "stages": stage_rows(hw),
            "cycles": {"initiation_interval": hw.initiation_interval,
                       "latency_estimate": hw.latency_estimate},
            "resources": resources, "files": files,
            "emit_seconds": round(time.perf_counter() - start, 2),
        }
        write_reports(tmp, report)
    log(summary(report, folder))
    return EmitResult(folder, hw, report)


def summary(report: dict[str, Any], folder: Path) -> str:
    acc = report["accuracy"]
    lines = [f"design {report['design']} -> {folder}/",
             f"  accuracy: float {acc['float']:.4f}, quantized {acc['quantized']:.4f}, "
             f"hardware reference {acc['hardware_reference']:.4f} ({report['vectors']} test vectors)"]
    for row in report["stages"]:
        extra = f" w {row['weight_format']} acc {row['accumulator']}" if row["kind"] == "linear" else ""
        lines.append(f"  {row['name']:>12}: {row['kind']:<10} {row['in_format']} -> {row['out_format']}{extra}"
                     f"  par {row['in_par']}x{row['out_par']}  II {row['initiation_interval']}")
    c = report["cycles"]
    lines.append(f"  cycles: II {c['initiation_interval']}, latency ~{c['latency_estimate']} (model); "
                 f"simulate with `flow sim {folder}`")
    if report["resources"]:
        lines.append("  resources: " + ", ".join(f"{k} {v}" for k, v in report["resources"].items()))
    return "\n".join(lines)
