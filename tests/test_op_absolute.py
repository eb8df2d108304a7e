"""The abs layer kind end to end: lowered from torch.abs, built, emitted, read back by the
RTL-derived model and simulated, from its op file alone (flow/ops/absolute.py)."""
import json

import pytest
import torch
from torch import nn

import flow
from flow.emit.vectors import read_vectors
from flow.estimate.model import estimate
from flow.ops import supported
from flow.simulation.rtl_model import RtlModel


class AbsMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 4), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.abs(self.fc1(x)))


def _design(signed: bool = True, par: object = 2):
    torch.manual_seed(0)
    quant = {"default": {"data_in_width": 6, "data_in_frac_width": 2, "data_out_width": 6,
                         "data_out_frac_width": 2},
             "fc1": {"data_out_signed": signed}, "fc2": {"data_in_signed": signed}}
    return flow.compile(AbsMLP(), torch.randn(2, 6), quant=quant,
                        parallelism={"default": {"in_par": "auto"}, "fc1": {"out_par": par}}, name="abs_mlp")


def _inputs() -> torch.Tensor:
    return torch.randn(64, 6, generator=torch.Generator().manual_seed(1)) * 4


def test_abs_lowers_to_a_stage_with_its_own_reference_report_row_and_estimate(tmp_path):
    design = _design()
    kinds = [stage.report_row()["kind"] for stage in design.graph.stages]
    assert kinds == ["linear", "abs", "linear"]
    stage = design.graph.stages[1]
    codes = torch.tensor([[-32, -31, -1, 0, 31], [3, -3, -32, 7, -8]])
    assert stage.forward_codes(codes).tolist() == [[31, 31, 1, 0, 31], [3, 3, 31, 7, 8]]  # -32 saturates
    x = _inputs()
    with torch.no_grad():  # the fake-quant model equals the exact reference
        fake = design.fake_quant_model()(x)
    exact = design.reference(design.quantize_inputs(x))
    assert torch.equal(fake, design.graph.last.out_format.dequantize(exact))
    folder = tmp_path / "abs_mlp"
    design.emit(folder, x)
    report = json.loads((folder / "report.json").read_text())
    assert [row["kind"] for row in report["stages"]] == kinds
    assert "absolute.sv" in (folder / "rtl" / "filelist.f").read_text()
    vectors = read_vectors(folder / "vectors")
    model = RtlModel(folder / "rtl", vectors.meta["top"])
    assert [model(row) for row in vectors.inputs.tolist()] == vectors.expected.tolist()
    assert estimate(design.graph)["stages"][f"u_s1_{stage.name}"]["LUT"] > 0  # torch.export names it abs_1
    assert "abs (saturating)" in supported()


def test_abs_on_unsigned_codes_is_elided():
    design = _design(signed=False)
    assert [stage.report_row()["kind"] for stage in design.graph.stages] == ["linear", "linear"]
    assert "unsigned" in design.graph.elided["abs_1"]


@pytest.mark.sim
def test_abs_design_is_bit_exact_in_rtl(tmp_path):
    design = _design(par=1)
    folder = tmp_path / "abs_mlp"
    design.emit(folder, _inputs())
    sim = design.simulate(folder)
    assert sim["mismatches"] == 0 and sim["out_beats"] == sim["expected_out_beats"]
    assert sim["initiation_interval"] == design.initiation_interval and sim["latency_cycles"] == design.latency
