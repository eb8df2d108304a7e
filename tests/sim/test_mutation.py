"""The regression bites: a one-line rounding change in a copy of the RTL cast must be caught."""
import shutil

import pytest
import torch

from flow.circuits.components import cast_parameters
from flow.formats.fixed import FixedFormat, Overflow, Rounding, cast_codes
from flow.toolchain import rtl_dir
from tests.sim.harness import simulate

HALF_EVEN = "2:       round_up = guard & (sticky | extended[RSHIFT]);"
MUTANT = "2:       round_up = guard;  // mutant: half_even rounds like half_up"


@pytest.mark.sim
def test_half_even_mutated_to_half_up_is_caught(tmp_path):
    rtl = tmp_path / "rtl"
    shutil.copytree(rtl_dir(), rtl)
    cast = rtl / "fixed_cast_lane.sv"
    text = cast.read_text()
    assert text.count(HALF_EVEN) == 1, "the line this test mutates moved; update HALF_EVEN"
    cast.write_text(text.replace(HALF_EVEN, MUTANT))
    dst = FixedFormat(6, 2)  # from s8.4: a shift of 2
    codes = list(range(-128, 128))  # every code, ties included
    expected = cast_codes(torch.tensor(codes), 4, dst, "half_even").tolist()
    params = cast_parameters(FixedFormat(8, 4), dst, Rounding.HALF_EVEN, Overflow.SATURATE, par=4)
    results = simulate("fixed_cast_mutant", "fixed_cast", params, codes, expected, in_width=8,
                       out_width=6, out_par=4, vectors=64, work_dir=tmp_path / "sim",
                       sources=sorted(rtl.glob("*.sv")))
    # the mutant is exactly half_up: every element where half_up and half_even differ mismatches,
    # once in the clean phase (first 8 beats = 32 elements) and once in the random phase
    as_half_up = cast_codes(torch.tensor(codes), 4, dst, "half_up").tolist()
    differ = [i for i, (a, b) in enumerate(zip(as_half_up, expected)) if a != b]
    assert len(differ) > 0
    assert results["mismatches"] == len(differ) + sum(1 for i in differ if i < 32)
