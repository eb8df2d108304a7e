"""The analytical estimator prices key_mask (the attention key mask) by its own Yosys fit
(flow/estimate/calibration_transformer.json, benches/calibrate_transformer_ops.py --kinds key_mask):
within 10 % of Yosys on all ten synthesized designs (five fitted, five held out), and a masked design's
key_mask stage gets that price (it was 0 LUT / 0 FF while the kind fell back to an absent "other")."""
import json

from benches.calibrate_transformer_ops import SPECS, build
from flow.emit.rtl import stage_instance
from flow.estimate.model import TRANSFORMER_CALIBRATION, Calibration, estimate


def test_key_mask_is_within_ten_percent_of_yosys_on_every_synthesized_design():
    calibration = Calibration.load()
    rows = [row for row in json.loads(TRANSFORMER_CALIBRATION.read_text())["rows"] if row["kind"] == "key_mask"]
    assert len(rows) == 10 and {row["design"] % 2 for row in rows} == {0, 1}
    for row in rows:
        for resource in ("LUT", "FF"):
            predicted = calibration.predict("key_mask", resource, row["features"])
            assert abs(predicted - row[resource]) <= 0.1 * row[resource], (row["design"], resource, predicted)


def test_a_masked_designs_key_mask_stage_is_priced():
    index = next(i for i, spec in enumerate(SPECS) if spec[0] == "key_mask")  # 8 tokens, par 1, s8.4 scores
    design, _ = build(index)
    position, stage = next((i, s) for i, s in enumerate(design.graph.stages) if s.estimate_kind() == "key_mask")
    row = estimate(design.graph)["stages"][stage_instance(position, stage)]
    assert 50 <= row["LUT"] <= 70 and 40 <= row["FF"] <= 56 and row["DSP48E1"] == 0  # Yosys: 59 LUT, 48 FF
