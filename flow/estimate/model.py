"""An analytical resource and cycle estimator (milliseconds, no synthesis), calibrated on Yosys.

``estimate(graph)`` gives LUT, FF and DSP48E1 per stage and in total for Xilinx 7-series, plus
the design's II and latency (the cycle model the simulations check). Each stage is described by
a few counts that drive its hardware (``stage_features``): bits of accumulators and casts, LUT
multipliers, weight-ROM LUTs, group multiplexers, shift-add adder bits from the actual adder graph,
register bits; for the stages between layers, a cast's rounding and saturation bits, an add's sum
bits, a FIFO's depth times width. LUT and FF are a non-negative linear model of them, one per
stage kind (every stage is a submodule of the top, which holds no logic of its own), whose coefficients
``benches/calibrate_estimator.py`` fits on a Yosys sweep and stores in ``calibration.json``
beside this file. DSPs are counted, not fitted: one DSP48E1 per multiplier lane whose product
Yosys maps to a DSP (data at least 2 bits, weight at least 3, product at least 9; a 25x18 block),
and for constant weights one per weight whose odd part is not 1 and passes the same rule.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flow.compiler.hardware_graph import HardwareGraph
from flow.emit.rtl import stage_instance
from flow.ops.base import Stage
from flow.ops.resources import (
    DSP_A,
    DSP_A_MIN,
    DSP_B,
    DSP_B_MIN,
    DSP_Y_MIN,
    cast_lane_features,
    constant_on_dsp,
    dsp_per_product,
    signed_bits,
)

__all__ = ["CALIBRATION", "EXACT_FF_FEATURES", "FF_ONLY_FEATURES", "TRANSFORMER_CALIBRATION", "DSP_A", "DSP_A_MIN", "DSP_B", "DSP_B_MIN", "DSP_Y_MIN", "Calibration", "cast_lane_features",
           "constant_on_dsp", "dsp_count", "dsp_per_product", "estimate", "signed_bits", "stage_features",
           "stage_kind"]

CALIBRATION = Path(__file__).with_name("calibration.json")
# gelu, softmax and layer_norm, fitted apart (benches/calibrate_transformer_ops.py): kinds calibration.json lacks
TRANSFORMER_CALIBRATION = Path(__file__).with_name("calibration_transformer.json")
# Counts of register bits alone: they drive FF, not LUT, so the LUT fit leaves them out (else a
# least-squares fit leans on them to explain logic and generalizes worse).
FF_ONLY_FEATURES = frozenset({"read_input_bits", "skid_bits", "pipeline_bits"})  # pipeline_bits: tanh's divider
# Register bits known exactly from the netlist (a pipelined shift-add layer's registers, its
# emitted widths times the stages that carry them): one FF each, counted rather than fitted, so a
# sweep without such registers cannot leave them out of the estimate.
EXACT_FF_FEATURES = frozenset({"register_bits"})


def stage_kind(stage: Stage) -> str:
    """The stage's calibration class (its op file says which)."""
    return stage.estimate_kind()


def stage_features(stage: Stage) -> dict[str, float]:
    """The counts a stage's LUT and FF grow with (see the module docstring): the stream bits every
    stage has, and its op file's own."""
    in_bits = stage.in_par * stage.in_format.width
    out_bits = stage.out_par * stage.out_format.width
    return {"one": 1.0, "stream_bits": in_bits + out_bits} | stage.estimate_features()


def dsp_count(stage: Stage) -> int:
    return stage.dsp_count()


@dataclass
class Calibration:
    """Per stage kind and resource: feature name -> coefficient."""

    coefficients: dict[str, dict[str, dict[str, float]]]

    @classmethod
    def load(cls, path: Path = CALIBRATION) -> Calibration:
        if not path.exists():
            raise FileNotFoundError(f"no estimator calibration at {path}; run `python -m benches.calibrate_estimator`")
        coefficients = json.loads(path.read_text())["coefficients"]
        extra = path.with_name(TRANSFORMER_CALIBRATION.name)
        if extra.exists():
            coefficients = {**json.loads(extra.read_text())["coefficients"], **coefficients}
        return cls(coefficients)

    def predict(self, kind: str, resource: str, features: dict[str, float]) -> float:
        weights = self.coefficients.get(kind, self.coefficients.get("other", {})).get(resource, {})
        exact = sum(value for name, value in features.items() if name in EXACT_FF_FEATURES) if resource == "FF" else 0.0
        return exact + sum(weights.get(name, 0.0) * value for name, value in features.items()
                           if name not in EXACT_FF_FEATURES)


def estimate(graph: HardwareGraph, calibration: Calibration | None = None) -> dict[str, Any]:
    """LUT, FF and DSP per stage (by instance name) and in total, with II and latency."""
    calibration = calibration or Calibration.load()
    stages: dict[str, dict[str, int]] = {}
    for index, stage in enumerate(graph.stages):
        kind, features = stage_kind(stage), stage_features(stage)
        stages[stage_instance(index, stage)] = {
            "LUT": round(calibration.predict(kind, "LUT", features)),
            "FF": round(calibration.predict(kind, "FF", features)),
            "DSP48E1": dsp_count(stage)}
    total = {key: sum(row[key] for row in stages.values()) for key in ("LUT", "FF", "DSP48E1")}
    return {"total": total, "stages": stages, "initiation_interval": graph.initiation_interval,
            "latency": graph.latency_estimate}
