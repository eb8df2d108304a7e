"""The transformer ops' components against flow.arith's integer kernels: one table each."""
import random

import pytest
import torch

from flow.formats.fixed import FixedFormat
from flow.hardware.components import ELEMENTWISE_CYCLES, gelu_parameters
from flow.nn import QuantGELU
from tests.sim.harness import random_codes, simulate

GELU_TABLE = [  # (input (width, frac), output (width, frac), lanes, stimulus)
    ((16, 8), (16, 8), 1, "random"),
    ((16, 8), (16, 8), 4, "random"),
    ((8, 4), (8, 4), 2, "random"),
    ((8, 3), (12, 6), 3, "random"),  # finer output than input
    ((12, 6), (8, 2), 2, "random"),  # coarser output: rounding and saturation
    ((16, 10), (16, 12), 1, "random"),  # the clip point (2.5) is deep inside the range
    ((6, 5), (6, 5), 2, "random"),  # every input below the clip point
    ((16, 8), (16, 8), 2, "negative"),
    ((16, 8), (16, 8), 2, "zeros"),
    ((10, 2), (10, 2), 1, "huge"),  # only the extremes
]


def _stimulus(fmt: FixedFormat, kind: str, count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    if kind == "negative":
        return [rng.randint(fmt.min_code, -1) for _ in range(count)]
    if kind == "zeros":
        return [0] * count
    if kind == "huge":
        return [rng.choice([fmt.min_code, fmt.max_code]) for _ in range(count)]
    return random_codes(fmt, count, rng)


@pytest.mark.sim
@pytest.mark.parametrize("src,dst,par,kind", GELU_TABLE)
def test_gelu(src, dst, par, kind, tmp_path):
    in_fmt, out_fmt = FixedFormat(*src), FixedFormat(*dst)
    codes = _stimulus(in_fmt, kind, par * 200, sum(src) + par)
    expected = QuantGELU(in_fmt, out_fmt).forward_codes(torch.tensor(codes)).tolist()
    results = simulate(f"gelu{src}{dst}x{par}{kind}".replace(" ", ""), "gelu", gelu_parameters(in_fmt, out_fmt, par),
                       codes, expected, in_width=in_fmt.width, out_width=out_fmt.width, out_par=par, vectors=200,
                       work_dir=tmp_path)
    assert results["mismatches"] == 0, results["examples"]
    assert results["out_beats"] == 200
    assert (results["initiation_interval"], results["latency_cycles"]) == ELEMENTWISE_CYCLES
