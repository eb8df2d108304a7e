"""fixed_cast against flow.formats.fixed.cast_codes: one row per configuration."""
import random

import pytest
import torch

from flow.circuits.components import ELEMENTWISE_CYCLES, cast_parameters
from flow.formats.fixed import FixedFormat, cast_codes
from flow.simulation.stimulus import random_codes
from tests.sim.harness import simulate

# (in: width, frac, signed) -> (out: width, frac, signed), rounding, overflow, lanes per beat
CAST_TABLE = [
    ((8, 4, True), (4, 1, True), "floor", "saturate", 1),
    ((8, 4, True), (4, 1, True), "half_up", "saturate", 2),
    ((8, 4, True), (4, 1, True), "half_even", "saturate", 4),
    ((8, 4, True), (4, 1, True), "floor", "wrap", 1),
    ((8, 4, True), (4, 1, True), "half_up", "wrap", 3),
    ((8, 4, True), (4, 1, True), "half_even", "wrap", 1),
    ((16, 12, True), (6, -2, True), "half_even", "saturate", 2),   # negative output frac
    ((5, -3, True), (12, 2, True), "half_up", "saturate", 1),      # negative input frac, left shift
    ((12, 20, False), (2, 0, True), "half_up", "wrap", 2),         # frac larger than width
    ((2, 0, True), (16, 9, False), "floor", "saturate", 1),        # 2-bit in, unsigned out
    ((16, 0, True), (8, 0, False), "half_even", "wrap", 4),        # 16-bit, same frac
    ((10, 3, True), (10, 3, True), "half_up", "saturate", 1),      # identity
    ((8, 4, False), (8, 4, True), "half_up", "saturate", 2),       # unsigned -> signed: top half saturates
    ((8, 4, False), (4, 1, False), "half_even", "wrap", 1),        # unsigned -> unsigned, wrap
    ((8, 2, False), (6, 2, True), "floor", "wrap", 1),             # unsigned -> signed, wrap
    ((7, 3, True), (5, 1, False), "half_up", "wrap", 2),           # signed -> unsigned, wrap
    ((1, 0, False), (1, 0, True), "floor", "wrap", 1),             # width 1 both sides
    ((1, -2, True), (3, 0, False), "half_up", "saturate", 1),      # width-1 signed, left shift
    ((2, 3, False), (2, -1, False), "half_up", "saturate", 3),     # width-2 unsigned, shift 4
    ((2, 0, False), (1, 1, True), "half_even", "saturate", 1),     # width-2 unsigned -> width-1 signed
]


@pytest.mark.sim
@pytest.mark.parametrize("row", CAST_TABLE, ids=lambda r: f"{r[0]}->{r[1]}-{r[2]}-{r[3]}-p{r[4]}")
def test_fixed_cast(row, tmp_path):
    (iw, ifr, isg), (ow, ofr, osg), rounding, overflow, par = row
    src, dst = FixedFormat(iw, ifr, isg), FixedFormat(ow, ofr, osg)
    rng = random.Random(hash(row) & 0xFFFF)
    vectors = 60
    if iw <= 10:  # every input code at least once
        codes = list(range(src.min_code, src.max_code + 1))
        codes += random_codes(src, (-len(codes)) % (par * vectors) + par * vectors, rng)
        codes = codes[: len(codes) - len(codes) % par]
    else:
        codes = random_codes(src, par * vectors * 4, rng)
    shift = ifr - ofr
    if shift > 0:  # exact ties (guard bit set, nothing below) decide between rounding modes
        ties = [c - c % (1 << shift) + (1 << (shift - 1)) for c in random_codes(src, par * 40, rng)]
        codes += [t for t in ties if src.min_code <= t <= src.max_code][: par * 20]
        codes = codes[: len(codes) - len(codes) % par]
    expected = cast_codes(torch.tensor(codes), ifr, dst, rounding, overflow).tolist()
    params = cast_parameters(src, dst, rounding, overflow, par)
    results = simulate(f"fixed_cast{row}", "fixed_cast", params, codes, expected, in_width=iw,
                       out_width=ow, out_par=par, vectors=len(codes) // par, work_dir=tmp_path)
    assert results["mismatches"] == 0, results["examples"]
    assert results["out_beats"] == len(codes) // par
    assert (results["initiation_interval"], results["latency_cycles"]) == ELEMENTWISE_CYCLES
