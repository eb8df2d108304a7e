"""flow estimate: xc7 and ECP5 synthesis of an emitted design, per layer and in total, logic depth,
nextpnr Fmax, report.json/report.md, and each bad input as one line."""
import json

import pytest

from flow.cli import main as cli
from flow.estimate import yosys
from flow.estimate.design import estimate_design
from flow.estimate.yosys import YosysError
from tests.designs import emit_two_linear


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return emit_two_linear(tmp_path_factory.mktemp("est") / "tiny", "tiny", 20)


def test_both_targets_per_layer_depth_fmax_and_reports(tiny):
    results = estimate_design(tiny, log=lambda _: None)
    x, e = results["xc7"], results["ecp5"]
    layers = x["layers"]  # one row per stage instance: the two Linears and the cast between (the ReLU
    # reads unsigned codes: the identity, no stage)
    assert list(layers) == list(e["layers"]) == ["u_s0_0", "u_s1_2_cast_in", "u_s2_2"]
    for target, keys in ((x, ("LUT", "FF", "DSP48E1", "CARRY4")), (e, ("LUT4", "FF", "CCU2C", "MULT18X18D"))):
        for key in keys:  # the instances hold everything but the top's own glue
            assert sum(row[key] for row in target["layers"].values()) <= target["total"][key]
    assert x["total"]["DSP48E1"] == layers["u_s0_0"]["DSP48E1"] + layers["u_s2_2"]["DSP48E1"] == 7  # 6 + 1 lanes
    assert layers["u_s1_2_cast_in"]["DSP48E1"] == 0 and layers["u_s1_2_cast_in"]["LUT"] > 0
    assert sum(x["lut_sizes"].values()) == x["total"]["LUT"] > 0
    assert 2 <= x["logic_depth"] <= 40 and x["seconds"] > 0  # register to register, not through the flip-flops
    assert e["total"]["MULT18X18D"] == 7 and e["total"]["LUT4"] > 0 and e["total"]["FF"] > 0
    assert e["pnr"]["fmax_mhz"] > 20, e["pnr"]
    report = json.loads((tiny / "report.json").read_text())
    assert report["estimate"]["xc7"]["total"] == x["total"]
    ii = report["cycles"]["initiation_interval"]
    assert report["estimate"]["vectors_per_second_at_ecp5_fmax"] == pytest.approx(e["pnr"]["fmax_mhz"] * 1e6 / ii)
    md = (tiny / "report.md").read_text()
    assert md.count("## Synthesis estimate") == 1 and "logic depth" in md and "Fmax" in md


def test_bad_inputs_are_one_line(tiny, tmp_path, capsys, monkeypatch):
    assert cli(["estimate", str(tiny), "--target", "stratix"]) == 2
    assert capsys.readouterr().err.strip() == "flow estimate: error: unknown target(s) ['stratix']; use xc7, ecp5"
    (tmp_path / "empty").mkdir()
    assert cli(["estimate", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "has no RTL" in err and "emit the design first" in err
    with pytest.raises(YosysError, match=r"^yosys did not finish within 0 s$"):
        estimate_design(tiny, ("xc7",), timeout=0.01, log=lambda _: None)

    real = yosys.subprocess.run

    def crashing(command, **kwargs):  # Yosys killed by a segfault
        return real(["python", "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"], **kwargs)

    monkeypatch.setattr(yosys.subprocess, "run", crashing)
    with pytest.raises(YosysError, match=r"yosys crashed \(SIGSEGV\)") as error:
        estimate_design(tiny, ("xc7",), log=lambda _: None)
    assert "\n" not in str(error.value)
