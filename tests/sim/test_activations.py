"""relu, leaky_relu, skid_buffer and fifo against the Python reference: one table each."""
import random

import pytest
import torch

from flow.circuits.components import (
    ELEMENTWISE_CYCLES,
    fifo_cycles,
    fifo_parameters,
    leaky_relu_parameters,
    relu_parameters,
)
from flow.formats.fixed import FixedFormat
from flow.nn import QuantLeakyReLU, QuantReLU
from flow.simulation.stimulus import random_codes
from tests.sim.harness import simulate

RELU_TABLE = [  # (width, lanes, signed)
    (2, 1, True), (8, 4, True), (16, 2, True), (1, 1, True),
    (8, 3, False), (2, 2, False), (1, 1, False), (16, 1, False),  # unsigned: every code passes
]
LEAKY_TABLE = [  # (width, shift, rounding, lanes, signed)
    (8, 3, "half_up", 2, True),
    (6, 1, "floor", 1, True),
    (16, 5, "half_even", 4, True),
    (4, 2, "half_even", 1, True),
    (3, 4, "half_up", 3, True),  # shift beyond the width: every negative code rounds to 0 or -1
    (1, 1, "half_up", 2, True),  # codes -1 and 0
    (8, 3, "half_up", 2, False),  # unsigned: no negative code, every code passes
    (1, 2, "floor", 1, False),
    (12, 1, "half_even", 3, False),
]
SKID_TABLE = [1, 24]  # data widths
FIFO_TABLE = [(1, 1), (8, 2), (8, 5), (24, 16), (3, 3)]  # (beat bits, depth)


def _codes(width, count, seed, signed=True):
    return random_codes(FixedFormat(width, 0, signed), count, random.Random(seed))


@pytest.mark.sim
@pytest.mark.parametrize("width,par,signed", RELU_TABLE)
def test_relu(width, par, signed, tmp_path):
    codes = _codes(width, par * 200, width, signed)
    expected = QuantReLU().forward_codes(torch.tensor(codes)).tolist()
    if not signed:
        assert expected == codes and max(codes) >= 1 << (width - 1)  # top-bit codes must pass
    results = simulate(f"relu{width}x{par}{'s' if signed else 'u'}", "relu",
                       relu_parameters(FixedFormat(width, 0, signed), par), codes, expected,
                       in_width=width, out_width=width, out_par=par, vectors=200, work_dir=tmp_path)
    assert results["mismatches"] == 0, results["examples"]
    assert (results["initiation_interval"], results["latency_cycles"]) == ELEMENTWISE_CYCLES


@pytest.mark.sim
@pytest.mark.parametrize("width,shift,rounding,par,signed", LEAKY_TABLE)
def test_leaky_relu(width, shift, rounding, par, signed, tmp_path):
    codes = _codes(width, par * 200, width + shift, signed)
    leaky = QuantLeakyReLU(FixedFormat(width, 0, signed), shift, rounding)
    expected = leaky.forward_codes(torch.tensor(codes)).tolist()
    if not signed:
        assert expected == codes and max(codes) >= 1 << (width - 1)
    params = leaky_relu_parameters(FixedFormat(width, 0, signed), shift, rounding, par)
    results = simulate(f"leaky_relu{width}s{shift}{rounding}x{par}{'s' if signed else 'u'}", "leaky_relu",
                       params, codes,
                       expected, in_width=width, out_width=width, out_par=par, vectors=200,
                       work_dir=tmp_path)
    assert results["mismatches"] == 0, results["examples"]
    assert (results["initiation_interval"], results["latency_cycles"]) == ELEMENTWISE_CYCLES


@pytest.mark.sim
@pytest.mark.parametrize("width", SKID_TABLE)
def test_skid_buffer_passes_every_beat_in_order(width, tmp_path):
    codes = [c & ((1 << width) - 1) for c in _codes(width, 400, 7)]
    results = simulate(f"skid{width}", "skid_buffer", dict(DATA_WIDTH=width), codes, codes,
                       in_width=width, out_width=width, out_par=1, vectors=400, work_dir=tmp_path)
    assert results["mismatches"] == 0, results["examples"]
    assert results["out_beats"] == 400
    assert (results["initiation_interval"], results["latency_cycles"]) == ELEMENTWISE_CYCLES


@pytest.mark.sim
@pytest.mark.parametrize("width,depth", FIFO_TABLE)
def test_fifo_passes_every_beat_in_order(width, depth, tmp_path):
    codes = [c & ((1 << width) - 1) for c in _codes(width, 300, depth)]
    results = simulate(f"fifo{width}x{depth}", "fifo", fifo_parameters(width, depth), codes, codes,
                       in_width=width, out_width=width, out_par=1, vectors=300, work_dir=tmp_path)
    assert results["mismatches"] == 0, results["examples"]
    assert results["out_beats"] == 300
    ii, latency = fifo_cycles(depth)
    assert (results["initiation_interval"], results["initiation_interval_max"], results["latency_cycles"]) == (
        ii, ii, latency)
