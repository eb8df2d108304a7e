"""absolute (the abs layer kind, flow.ops.absolute) against its stage's exact reference."""
import random

import pytest
import torch

from flow.circuits.components import ELEMENTWISE_CYCLES, relu_parameters
from flow.formats.fixed import FixedFormat
from flow.ops.absolute import AbsStage
from flow.simulation.stimulus import random_codes
from tests.sim.harness import simulate

ABS_TABLE = [  # (width, lanes, signed)
    (8, 4, True), (1, 1, True), (2, 2, True), (16, 3, True),
    (8, 2, False), (1, 1, False),  # unsigned: every code passes
]


@pytest.mark.sim
@pytest.mark.parametrize("width,par,signed", ABS_TABLE)
def test_absolute(width, par, signed, tmp_path):
    fmt = FixedFormat(width, 0, signed)
    codes = random_codes(fmt, par * 200, random.Random(width))
    expected = AbsStage("abs", fmt, par, par).forward_codes(torch.tensor(codes)).tolist()
    if signed:
        most_negative = -(1 << (width - 1))
        assert most_negative in codes and expected[codes.index(most_negative)] == (1 << (width - 1)) - 1
    else:
        assert expected == codes
    results = simulate(f"absolute{width}x{par}{'s' if signed else 'u'}", "absolute", relu_parameters(fmt, par),
                       codes, expected, in_width=width, out_width=width, out_par=par, vectors=200,
                       work_dir=tmp_path)
    assert results["mismatches"] == 0, results["examples"]
    assert (results["initiation_interval"], results["latency_cycles"]) == ELEMENTWISE_CYCLES
