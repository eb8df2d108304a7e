"""Per-module synthesis (flow.estimate.per_module): on a small design its per-module sum has flow
estimate's hierarchical flip-flops, DSPs, carries and inverters exactly and its LUTs within 5 % (ABC's
mapping depends on the netlist's order, which a separate run changes), the cache answers a second run,
and a module that runs out of time is recorded, not dropped."""
import pytest

from flow.estimate.design import estimate_design
from flow.estimate.per_module import estimate_per_module, split_rtlil, unit_text
from flow.estimate.yosys import YosysError
from tests.designs import emit_two_linear


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return emit_two_linear(tmp_path_factory.mktemp("per_module") / "two_linear", "two_linear", 4)


def test_per_module_sum_equals_hierarchical_synthesis(small, tmp_path):
    whole = estimate_design(small, ("xc7",), pnr=False, log=lambda _: None)["xc7"]
    first = estimate_per_module(small, ("xc7",), cache=tmp_path, log=lambda _: None)["xc7"]
    assert first["complete"] and first["failed"] == []
    structural = ("FF", "DSP48E1", "CARRY4", "INV", "BRAM")  # no logic crosses a module boundary in either
    assert {k: first["total"][k] for k in structural} == {k: whole["total"][k] for k in structural}
    assert first["total"]["DSP48E1"] == 7 and first["total"]["FF"] == 310
    assert abs(first["total"]["LUT"] - whole["total"]["LUT"]) <= 0.05 * whole["total"]["LUT"]
    assert first["cells"]["IBUF"] == whole["cells"]["IBUF"] > 0  # I/O buffers on the top only, as in one run
    units = first["units"]
    assert sorted(name for u in units.values() for name in u["instances"]) == \
        sorted(["(top)", *whole["layers"]])  # every instance once, the top's glue apart
    assert sorted(u["module"] for u in units.values()) == ["fixed_cast", "linear", "linear", "two_linear_top"]
    for name, layer in whole["layers"].items():
        unit = next(u for u in units.values() if name in u["instances"])
        assert {k: unit["each"][k] for k in structural} == {k: layer[k] for k in structural}
    again = estimate_per_module(small, ("xc7",), cache=tmp_path, log=lambda _: None)["xc7"]
    assert again["total"] == first["total"] and all(u["cached"] for u in again["units"].values())


def test_timeout_is_recorded_per_module(small):
    out = estimate_per_module(small, ("xc7",), timeout=0.01, log=lambda _: None)["xc7"]
    assert not out["complete"] and sorted(out["failed"]) == sorted(out["units"]) and len(out["failed"]) == 4
    assert all("did not finish within 0 s" in u["error"] for u in out["units"].values())
    assert out["total"]["LUT"] == 0 and out["cells"] == {}
    with pytest.raises(YosysError, match=r"^yosys did not finish within 0 s$"):  # the budget bounds elaboration too
        estimate_per_module(small, ("xc7",), budget=0.0, log=lambda _: None)


def test_units_rename_the_top_and_box_the_children():
    text = "\n".join(["attribute \\src \"a.sv:1\"", "module \\top", "  wire width 2 input 1 \\a",
                      "  cell \\leaf \\u0", "  end", "  cell \\leaf \\u1", "  end", "end",
                      "module \\leaf", "  wire width 2 input 1 \\x", "  wire width 3 \\y", "end"])
    modules = split_rtlil(text)
    assert list(modules) == ["\\top", "\\leaf"] and modules["\\top"][0].startswith("attribute")
    top = unit_text("\\top", modules, top=True)
    assert "module \\flow_unit_top" in top and "attribute \\blackbox 1\nmodule \\leaf\n  wire width 2 input 1 \\x\nend" \
        in top and "\\y" not in top
    assert unit_text("\\leaf", modules).startswith("module \\flow_unit_top")
