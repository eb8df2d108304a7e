"""relu, leaky_relu and skid_buffer against the Python reference: one table each."""
import random

import pytest
import torch

from flow.formats.fixed import FixedFormat, Rounding
from flow.nn import QuantLeakyReLU, QuantReLU
from tests.sim.harness import random_codes, simulate

RELU_TABLE = [(2, 1), (8, 4), (16, 2)]  # (width, lanes)
LEAKY_TABLE = [  # (width, shift, rounding, lanes)
    (8, 3, "half_up", 2),
    (6, 1, "floor", 1),
    (16, 5, "half_even", 4),
    (4, 2, "half_even", 1),
    (3, 4, "half_up", 3),  # shift beyond the width: every negative code rounds to 0 or -1
]
SKID_TABLE = [1, 24]  # data widths


def _codes(width, count, seed):
    return random_codes(FixedFormat(width, 0), count, random.Random(seed))


@pytest.mark.sim
@pytest.mark.parametrize("width,par", RELU_TABLE)
def test_relu(width, par, tmp_path):
    codes = _codes(width, par * 200, width)
    expected = QuantReLU().forward_codes(torch.tensor(codes)).tolist()
    results = simulate(f"relu{width}x{par}", "relu", dict(PAR=par, WIDTH=width), codes, expected,
                       in_width=width, out_width=width, out_par=par, vectors=200, work_dir=tmp_path)
    assert results["mismatches"] == 0, results["examples"]
    assert (results["latency_cycles"], results["initiation_interval"]) == (1, 1)


@pytest.mark.sim
@pytest.mark.parametrize("width,shift,rounding,par", LEAKY_TABLE)
def test_leaky_relu(width, shift, rounding, par, tmp_path):
    codes = _codes(width, par * 200, width + shift)
    leaky = QuantLeakyReLU(FixedFormat(width, 0), shift, rounding)
    expected = leaky.forward_codes(torch.tensor(codes)).tolist()
    params = dict(PAR=par, WIDTH=width, SHIFT=shift, ROUNDING=Rounding(rounding).rtl_code)
    results = simulate(f"leaky_relu{width}s{shift}{rounding}x{par}", "leaky_relu", params, codes,
                       expected, in_width=width, out_width=width, out_par=par, vectors=200,
                       work_dir=tmp_path)
    assert results["mismatches"] == 0, results["examples"]
    assert (results["latency_cycles"], results["initiation_interval"]) == (1, 1)


@pytest.mark.sim
@pytest.mark.parametrize("width", SKID_TABLE)
def test_skid_buffer_passes_every_beat_in_order(width, tmp_path):
    codes = [c & ((1 << width) - 1) for c in _codes(width, 400, 7)]
    results = simulate(f"skid{width}", "skid_buffer", dict(DATA_WIDTH=width), codes, codes,
                       in_width=width, out_width=width, out_par=1, vectors=400, work_dir=tmp_path)
    assert results["mismatches"] == 0, results["examples"]
    assert results["out_beats"] == 400
    assert (results["latency_cycles"], results["initiation_interval"]) == (1, 1)
