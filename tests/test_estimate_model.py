"""The analytical estimator against Yosys: errors on the held-out half of the committed sweep
(flow/estimate/calibration.json) stay within pinned bounds, its stored features match what the
model computes today, DSPs are counted exactly, and II/latency are the simulated cycles."""
import json
import statistics

import pytest

from benches.calibrate_estimator import build, design_errors
from flow.estimate.model import CALIBRATION, Calibration, dsp_count, estimate, stage_features
from flow.hardware.emit import stage_instance

DATA = json.loads(CALIBRATION.read_text())
HELD_OUT = [r for r in DATA["rows"] if r["design"] % 2 == 1]
# pinned from the committed calibration (see the closing note of the estimator's issue); a change
# to the features or the coefficients that loosens them fails here
# (measured: LUT median 10.7 %, worst 46 %; FF median 4.8 %, worst 30 %; DSPs exact on 85 % of the
# designs, every folded one)
MEDIAN_LUT, WORST_LUT, MEDIAN_FF, WORST_FF, DSP_EXACT = 0.11, 0.47, 0.05, 0.30, 0.85


def test_held_out_errors_within_pinned_bounds():
    errors = design_errors(HELD_OUT, Calibration(DATA["coefficients"]))
    assert len(errors["LUT"]) == 40  # designs the fit never saw
    assert statistics.median(errors["LUT"]) <= MEDIAN_LUT and max(errors["LUT"]) <= WORST_LUT
    assert statistics.median(errors["FF"]) <= MEDIAN_FF and max(errors["FF"]) <= WORST_FF
    assert sum(errors["DSP_exact"]) / len(errors["DSP_exact"]) >= DSP_EXACT


def test_dsps_of_folded_layers_are_counted_exactly():
    folded = [r for r in DATA["rows"] if r["kind"].startswith("linear_folded")]
    assert len(folded) >= 40 and all(r["dsp_model"] == r["DSP48E1"] for r in folded)


@pytest.mark.parametrize("spec", DATA["specs"][:40:7], ids=lambda s: f"design{s['index']}-{s['style']}")
def test_stored_features_are_what_the_model_computes(spec):
    design, _ = build(spec)
    rows = {r["instance"]: r for r in DATA["rows"] if r["design"] == spec["index"]}
    for index, stage in enumerate(design.graph.stages):
        row = rows[stage_instance(index, stage)]
        assert row["features"] == pytest.approx(stage_features(stage))
        assert row["dsp_model"] == dsp_count(stage)


def test_estimate_gives_the_cycle_model_and_per_stage_rows():
    design, _ = build(DATA["specs"][1])
    result = estimate(design.graph)
    assert (result["initiation_interval"], result["latency"]) == (design.initiation_interval, design.latency)
    assert list(result["stages"]) == [stage_instance(i, s) for i, s in enumerate(design.graph.stages)]
    assert result["total"]["LUT"] == sum(row["LUT"] for row in result["stages"].values()) > 0
