"""An analytical resource and cycle estimator (milliseconds, no synthesis), calibrated on Yosys.

``estimate(graph)`` gives LUT, FF and DSP48E1 per stage and in total for Xilinx 7-series, plus
the design's II and latency (the cycle model the simulations check). Each stage is described by
a few counts that drive its hardware (``stage_features``): bits of accumulators and casts, LUT
multipliers, distributed-ROM bits, shift-add adder bits from the actual adder graph, register
bits; LUT and FF are a non-negative linear model of them, one per stage kind, whose coefficients
``benches/calibrate_estimator.py`` fits on a Yosys sweep and stores in ``calibration.json``
beside this file. DSPs are counted, not fitted: one DSP48E1 per multiplier lane whose product
Yosys maps to a DSP (data at least 2 bits, weight at least 3, product at least 9; a 25x18 block),
and for constant weights one per weight whose odd part is not 1 and passes the same rule.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flow.hardware.cmvm import csd
from flow.hardware.components import linear_steps
from flow.hardware.stages import ActivationStage, CastStage, FifoStage, HardwareGraph, LinearStage

CALIBRATION = Path(__file__).with_name("calibration.json")
DSP_A, DSP_B, DSP_A_MIN, DSP_B_MIN, DSP_Y_MIN = 25, 18, 2, 3, 9  # Yosys' xc7 mul2dsp limits, as measured


def signed_bits(fmt: Any) -> int:
    return fmt.width + (0 if fmt.signed else 1)


def dsp_per_product(x_bits: int, w_bits: int) -> int:
    """DSP48E1 blocks a signed x_bits (data) by w_bits (weight) product takes in Yosys' xc7 mapping
    (0: LUTs): the data operand at least 2 bits, the weight at least 3, the product at least 9
    (measured on the calibration sweep); a 25x18 block."""
    if x_bits < DSP_A_MIN or w_bits < DSP_B_MIN or x_bits + w_bits < DSP_Y_MIN:
        return 0
    return math.ceil(x_bits / DSP_A) * math.ceil(w_bits / DSP_B)


def constant_on_dsp(x_bits: int, code: int) -> int:
    """DSP48E1s a product by the constant ``code`` takes: Yosys drops the constant's trailing zeros
    (a shift) and narrows it to its own bits; +-2**k is a shift alone."""
    odd = abs(code)
    if not odd:
        return 0
    while not odd & 1:
        odd >>= 1
    if odd == 1:
        return 0
    return dsp_per_product(x_bits, _bits(-odd if code < 0 else odd, -odd if code < 0 else odd))


def stage_kind(stage: Any) -> str:
    if isinstance(stage, LinearStage):
        if stage.constant is not None:
            return "linear_lut"
        if linear_steps(stage.in_features, stage.out_features, stage.in_par, stage.out_par) == 1:
            return "linear_parallel"
        c = stage.layer.config
        on_dsp = dsp_per_product(signed_bits(c.data_in), signed_bits(c.weight)) > 0
        return "linear_folded" if on_dsp else "linear_folded_lut_products"
    if isinstance(stage, ActivationStage | CastStage):
        return "elementwise"
    if isinstance(stage, FifoStage):
        return "fifo"
    return "other"


def stage_features(stage: Any) -> dict[str, float]:
    """The counts a stage's LUT and FF grow with (see the module docstring)."""
    in_bits = stage.in_par * stage.in_format.width
    out_bits = stage.out_par * stage.out_format.width
    f: dict[str, float] = {"one": 1.0, "stream_bits": in_bits + out_bits}
    if isinstance(stage, LinearStage):
        layer = stage.layer
        x, w = signed_bits(layer.config.data_in), signed_bits(layer.config.weight)
        lanes = stage.in_par * stage.out_par
        steps = linear_steps(stage.in_features, stage.out_features, stage.in_par, stage.out_par)
        codes = layer.weight_codes()
        nonzero = int((codes != 0).sum())
        if stage.constant is not None:
            const = stage.constant
            acc = [max(2, _bits(*const.accumulator_bounds(o))) for o in range(stage.out_features)]
            f.update(adder_bits=float(const.held.lut_bits(const.graph)),  # the bits that take a LUT
                     cast_bits=float(sum(acc)), register_bits=float(_pipeline_bits(stage)))
            return f
        acc = layer.accumulator_width()
        lut_products = dsp_per_product(x, w) == 0
        if steps == 1:  # fully parallel: constant weights; Yosys builds small constant products from LUTs
            lut_mult = sum(x * max(len(csd(code)) - 1, 0) for code in codes.flatten().tolist()
                           if code and not constant_on_dsp(x, code))
            f.update(lut_mult_bits=float(lut_mult), adder_bits=float(nonzero * acc),
                     cast_bits=float(stage.out_features * acc))
        else:
            groups = stage.out_features // stage.out_par
            f.update(lut_mult_bits=float(lanes * x * w if lut_products else 0),
                     adder_bits=float(lanes * acc), cast_bits=float(stage.out_par * acc),
                     rom_bits=float(lanes * layer.config.weight.width * steps) / 64.0,
                     result_bits=float(stage.out_features * acc), acc_mux_bits=float(stage.out_par * acc * (groups - 1)),
                     counter_bits=float(math.log2(steps)), lanes=float(lanes), x_lane_bits=float(stage.in_par * x))
        return f
    if isinstance(stage, FifoStage):
        f["fifo_bits"] = float(stage.depth * in_bits)
    return f


def _bits(lo: int, hi: int) -> int:
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1))):
        bits += 1
    return bits


def _pipeline_bits(stage: LinearStage) -> int:
    """Register bits inside a pipelined shift-add layer: each node carried across a boundary."""
    const = stage.constant
    if const is None or const.segments == 1:
        return 0
    return sum(const.held.nodes[n].width * (seg - const.segment(n)) for n, seg in const.last_uses.items())


def dsp_count(stage: Any) -> int:
    if not isinstance(stage, LinearStage) or stage.constant is not None:
        return 0
    c = stage.layer.config
    per = dsp_per_product(signed_bits(c.data_in), signed_bits(c.weight))
    if linear_steps(stage.in_features, stage.out_features, stage.in_par, stage.out_par) == 1:
        x = signed_bits(c.data_in)
        return sum(constant_on_dsp(x, code) for code in stage.layer.weight_codes().flatten().tolist())
    return per * stage.in_par * stage.out_par


@dataclass
class Calibration:
    """Per stage kind and resource: feature name -> coefficient."""

    coefficients: dict[str, dict[str, dict[str, float]]]

    @classmethod
    def load(cls, path: Path = CALIBRATION) -> Calibration:
        if not path.exists():
            raise FileNotFoundError(f"no estimator calibration at {path}; run `python -m benches.calibrate_estimator`")
        return cls(json.loads(path.read_text())["coefficients"])

    def predict(self, kind: str, resource: str, features: dict[str, float]) -> float:
        weights = self.coefficients.get(kind, self.coefficients.get("other", {})).get(resource, {})
        return sum(weights.get(name, 0.0) * value for name, value in features.items())


def estimate(graph: HardwareGraph, calibration: Calibration | None = None) -> dict[str, Any]:
    """LUT, FF and DSP per stage (by instance name) and in total, with II and latency."""
    from flow.hardware.emit import stage_instance

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
