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
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flow.formats.base import Overflow, Rounding
from flow.hardware import stages as hw
from flow.hardware.cmvm import csd
from flow.hardware.components import linear_steps
from flow.hardware.stages import HardwareGraph, LinearStage
from flow.ops.base import Stage as OpStage

CALIBRATION = Path(__file__).with_name("calibration.json")
BETWEEN_KINDS = {hw.ActivationStage: "activation", hw.CastStage: "cast", hw.FifoStage: "fifo",
              hw.BroadcastStage: "broadcast", hw.AddStage: "add", hw.ConcatStage: "concat"}  # the stages between layers
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
    if isinstance(stage, OpStage):
        return stage.estimate_kind()
    if isinstance(stage, LinearStage):
        if stage.constant is not None:
            return "linear_lut"
        if linear_steps(stage.in_features, stage.out_features, stage.in_par, stage.out_par) == 1:
            return "linear_parallel"
        c = stage.layer.config
        on_dsp = dsp_per_product(signed_bits(c.data_in), signed_bits(c.weight)) > 0
        return "linear_folded" if on_dsp else "linear_folded_lut_products"
    return BETWEEN_KINDS.get(type(stage), "other")


def stage_features(stage: Any) -> dict[str, float]:
    """The counts a stage's LUT and FF grow with (see the module docstring)."""
    in_bits = stage.in_par * stage.in_format.width
    out_bits = stage.out_par * stage.out_format.width
    f: dict[str, float] = {"one": 1.0, "stream_bits": in_bits + out_bits}
    if isinstance(stage, OpStage):
        return f | stage.estimate_features()
    if isinstance(stage, LinearStage):
        if stage.constant is not None:
            return f | _shift_add_features(stage)
        steps = linear_steps(stage.in_features, stage.out_features, stage.in_par, stage.out_par)
        return f | (_parallel_features(stage) if steps == 1 else _folded_features(stage, steps))
    if isinstance(stage, hw.FifoStage):
        f.update(fifo_bits=float(stage.depth * in_bits), fifo_lutram=float(in_bits * math.ceil(stage.depth / 32)),
                 fifo_pointer_bits=float(math.ceil(math.log2(stage.depth + 1))))
    return f


def _shift_add_features(stage: LinearStage) -> dict[str, float]:
    """A shift-add layer: the adder bits that take a LUT, each output's cast, pipeline registers."""
    const = stage.constant
    acc = [max(2, _bits(*const.accumulator_bounds(o))) for o in range(stage.out_features)]
    return {"adder_bits": float(const.held.lut_bits(const.graph)), "cast_bits": float(sum(acc)),
            "register_bits": float(_pipeline_bits(stage))}


def _parallel_features(stage: LinearStage) -> dict[str, float]:
    """A fully parallel DSP layer (constant weights): LUT-built constant products, each product's
    bits (the tree's leaves, as wide as data and weight code), the tree's depth growth per output
    (n log2 n for n nonzero weights), and its accumulator-wide adders and casts."""
    layer = stage.layer
    x, acc = signed_bits(layer.config.data_in), layer.accumulator_width()
    codes = layer.weight_codes()
    flat = [code for code in codes.flatten().tolist() if code]
    per_output = (codes != 0).sum(dim=1).tolist()
    return {"lut_mult_bits": float(sum(x * max(len(csd(c)) - 1, 0) for c in flat if not constant_on_dsp(x, c))),
            "adder_bits": float(len(flat) * acc), "cast_bits": float(stage.out_features * acc),
            "product_bits": float(sum(x + _bits(c, c) - 1 for c in flat)),
            "tree_bits": float(sum(n * math.log2(n) for n in per_output if n))}


def _folded_features(stage: LinearStage, steps: int) -> dict[str, float]:
    """A folded layer (hw/rtl/linear.sv): LUT-built lane products, one accumulator-wide adder per
    lane, the group multiplexers over the accumulators and results (their cost per bit grows with
    the log of the groups: a selection tree), the weight ROM in 64-bit LUTs, the output casts and
    skid buffer, and the accumulator and result registers."""
    layer = stage.layer
    x, w, acc = signed_bits(layer.config.data_in), signed_bits(layer.config.weight), layer.accumulator_width()
    lanes, groups = stage.in_par * stage.out_par, stage.out_features // stage.out_par
    return {"lut_mult_bits": float(lanes * x * w if dsp_per_product(x, w) == 0 else 0),
            "adder_bits": float(lanes * acc), "acc_mux_bits": float(stage.out_par * acc * (groups - 1)),
            "mux_log_bits": float(stage.out_par * acc * groups * math.log2(groups)),
            "rom_luts": float(lanes * layer.config.weight.width * math.ceil(steps / 64)),
            "cast_bits": float(stage.out_par * acc), "out_bits": float(stage.out_par * layer.config.data_out.width),
            "result_bits": float(stage.out_features * acc)}


def cast_lane_features(src: Any, dst: Any, rounding: Rounding, overflow: Overflow, par: int) -> dict[str, float]:
    """What ``par`` fixed_cast_lanes from ``src`` to ``dst`` grow with: the rounding adder over the
    kept bits, and the saturation compare over the kept bits above the output's."""
    shift = src.frac - dst.frac
    kept = src.width + 1 + max(-shift, 0) - max(shift, 0)
    rounds = shift > 0 and rounding != Rounding.FLOOR
    saturates = overflow == Overflow.SATURATE and kept > dst.width
    return {"round_bits": float(par * kept if rounds else 0),
            "sat_bits": float(par * (kept - dst.width) if saturates else 0),
            "sat_out_bits": float(par * dst.width if saturates else 0)}


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
    if isinstance(stage, OpStage):
        return stage.dsp_count()
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
