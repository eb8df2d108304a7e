"""linear against QuantLinear.forward_codes: full, partial and minimal parallelism."""
import random

import pytest
import torch

from flow.circuits.components import linear_cycles
from flow.formats.fixed import FixedFormat as F
from flow.formats.fixed import dequantize
from flow.nn import LinearQuantConfig, QuantLinear
from flow.simulation.stimulus import library_sources, linear_parameters, random_codes, random_layer
from flow.simulation.verilator import build
from tests.sim.harness import simulate

# in, out, in_par, out_par, (x, w, b, y formats), rounding, overflow
LINEAR_TABLE = [
    (4, 3, 4, 3, (F(8, 4), F(8, 4), F(8, 4), F(8, 4)), "half_up", "saturate"),              # full
    (8, 6, 2, 3, (F(8, 4), F(8, 4), F(8, 4), F(6, 2)), "floor", "wrap"),                    # partial
    (6, 4, 1, 1, (F(8, 4), F(8, 4), F(8, 4), F(8, 4)), "half_even", "saturate"),            # minimal
    (16, 8, 16, 1, (F(8, 4, False), F(8, 6), F(8, 4), F(8, 2)), "half_up", "wrap"),         # unsigned in
    (5, 7, 1, 7, (F(4, 1), F(3, 2), F(6, 5), F(6, 0)), "half_even", "wrap"),                # bias cast
    (3, 2, 3, 2, (F(2, 0), F(2, 0), F(2, 0), F(2, 0)), "floor", "saturate"),                # 2-bit
    (8, 4, 4, 2, (F(16, 8), F(16, 12), F(16, 8), F(16, 10)), "half_up", "saturate"),        # 16-bit
    (4, 4, 2, 4, (F(8, -2), F(6, 3), F(8, -4), F(8, -3)), "half_even", "saturate"),         # frac < 0
    (12, 6, 3, 2, (F(6, 9), F(5, 7), F(7, 12), F(8, 14, False)), "half_up", "saturate"),    # frac > w
    (32, 16, 32, 16, (F(8, 4), F(8, 5), F(8, 4), F(8, 3)), "half_up", "saturate"),          # larger
    (6, 5, 2, 5, (F(4, 2, False), F(4, 3, False), F(5, 4, False), F(6, 3, False)), "half_up", "wrap"),  # all unsigned
    (4, 2, 1, 1, (F(1, 0), F(1, 0), F(1, 0, False), F(1, 0, False)), "floor", "saturate"),  # width 1
    (7, 3, 7, 1, (F(3, 0, False), F(2, -1, False), F(16, 3), F(9, -2)), "half_even", "saturate"),  # u weights
    (8, 4, 4, 4, (F(8, 4), F(3, 2, False), F(4, 6, False), F(8, 4, False)), "half_up", "saturate"),  # s in, u out
    # folded with 544 lanes of 16-bit weights: 8,704 lane bits, past Verilator's 8,192-bit replication limit
    (32, 34, 32, 17, (F(6, 3), F(16, 14), F(8, 4), F(8, 3)), "half_even", "saturate"),
    # a larger folded layer: a ROM of 576 words of 16 lanes (the unrolled select of 9,216 weights
    # it replaced took minutes to compile); its build is held to LARGE_BUILD_SECONDS
    (96, 96, 4, 4, (F(8, 4), F(8, 5), F(8, 4), F(8, 3)), "half_up", "saturate"),
]
LARGE_ROW = LINEAR_TABLE[-1]
LARGE_BUILD_SECONDS = 60.0  # uncached; 2.6 s measured on a loaded 2-core machine (the old select: 2.8 s)


@pytest.mark.sim
@pytest.mark.parametrize("row", LINEAR_TABLE,
                         ids=lambda r: f"{r[0]}x{r[1]}-p{r[2]}x{r[3]}-{r[5]}-{r[6]}")
def test_linear(row, tmp_path):
    n_in, n_out, in_par, out_par, formats, rounding, overflow = row
    config = LinearQuantConfig(*formats, rounding, overflow)
    rng = random.Random(n_in * 1000 + n_out)
    layer = random_layer(n_in, n_out, config, rng)
    vectors = 40
    x = torch.tensor(random_codes(config.data_in, n_in * vectors, rng)).view(vectors, n_in)
    expected = layer.forward_codes(x).flatten().tolist()
    ii, latency = linear_cycles(n_in, n_out, in_par, out_par)
    results = simulate(f"linear{row}", "linear", linear_parameters(layer, in_par, out_par),
                       x.flatten().tolist(), expected, in_width=config.data_in.width,
                       out_width=config.data_out.width, out_par=out_par, vectors=vectors,
                       work_dir=tmp_path, cycles_per_vector=ii)
    assert results["mismatches"] == 0, results["examples"]
    assert results["out_beats"] == vectors * n_out // out_par
    assert results["initiation_interval"] == results["initiation_interval_max"] == ii
    assert results["latency_cycles"] == latency


@pytest.mark.sim
def test_a_large_folded_layer_builds_in_bounded_time(tmp_path):
    """The ROM keeps the build small: one uncached Verilator build of the 96 -> 96 row (Verilator's
    runtime objects come from flow's shared object cache), under LARGE_BUILD_SECONDS."""
    n_in, n_out, in_par, out_par, formats, rounding, overflow = LARGE_ROW
    layer = random_layer(n_in, n_out, LinearQuantConfig(*formats, rounding, overflow), random.Random(0))
    built = build("linear", library_sources(), linear_parameters(layer, in_par, out_par), build_root=tmp_path)
    assert not built.cached and built.seconds < LARGE_BUILD_SECONDS, built.seconds


@pytest.mark.sim
@pytest.mark.parametrize("in_par,out_par", [(2, 2), (8, 4)], ids=["folded", "full"])
def test_accumulator_sized_by_the_actual_weights_wraps_exactly(in_par, out_par, tmp_path):
    """Weights in {-1, 0, 1} under 16-bit inputs need a 20-bit accumulator, not the formats' 28 bits
    (narrower even than one 24-bit product): running sums wrap, the final sums are exact."""
    config = LinearQuantConfig(F(16, 8), F(8, 4), F(8, 4), F(8, 2), "half_up", "saturate")
    rng = random.Random(7)
    layer = QuantLinear(8, 4, config=config)
    w = torch.tensor([rng.choice((-1, 0, 1)) for _ in range(32)]).view(4, 8)
    with torch.no_grad():
        layer.weight.copy_(dequantize(w, config.weight, torch.float64))
        layer.bias.copy_(torch.tensor([0.5, -0.25, 0.0, 0.0625]))
    assert (layer.accumulator_width(), layer.acc_format.width) == (20, 28)
    vectors = 40
    x = torch.tensor(random_codes(config.data_in, 8 * vectors, rng)).view(vectors, 8)
    x[0] = -(1 << 15)  # the interval's ends: every input at its extreme
    x[1] = (1 << 15) - 1
    results = simulate(f"linear-narrow-{in_par}x{out_par}", "linear", linear_parameters(layer, in_par, out_par),
                       x.flatten().tolist(), layer.forward_codes(x).flatten().tolist(), in_width=16, out_width=8,
                       out_par=out_par, vectors=vectors, work_dir=tmp_path,
                       cycles_per_vector=linear_cycles(8, 4, in_par, out_par)[0])
    assert results["mismatches"] == 0, results["examples"]
