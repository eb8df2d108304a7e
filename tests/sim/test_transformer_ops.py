"""The transformer ops' components against flow.arith's integer kernels: one table each."""
import random

import pytest
import torch

from flow.circuits.components import (
    ELEMENTWISE_CYCLES,
    gelu_parameters,
    layer_norm_cycles,
    layer_norm_parameters,
    matmul_cycles,
    matmul_parameters,
    softmax_cycles,
    softmax_parameters,
)
from flow.formats.base import Overflow, Rounding
from flow.formats.fixed import FixedFormat
from flow.nn import QuantGELU, QuantLayerNorm, QuantMatmul, QuantSoftmax
from flow.simulation.stimulus import random_codes
from tests.sim.harness import simulate

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


SOFTMAX_TABLE = [  # (input (width, frac), output frac, row length, lanes, stimulus)
    ((16, 8), 8, 8, 1, "random"),
    ((16, 8), 8, 16, 4, "random"),
    ((8, 4), 8, 6, 3, "random"),
    ((12, 6), 12, 8, 2, "random"),
    ((8, 3), 6, 5, 5, "random"),  # a whole row per beat
    ((16, 8), 8, 8, 2, "equal"),  # every element the same: 1/8 each
    ((16, 8), 8, 8, 1, "huge"),  # one element far above the rest: 1.0 there, 0 elsewhere
    ((16, 8), 8, 8, 2, "negative"),
    ((16, 8), 8, 8, 4, "zeros"),
    ((10, 4), 7, 1, 1, "random"),  # a row of one: always 1.0
]


def _rows(fmt: FixedFormat, kind: str, rows: int, length: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    if kind == "equal":
        return [[rng.randint(fmt.min_code, fmt.max_code)] * length for _ in range(rows)]
    if kind == "huge":
        out = []
        for _ in range(rows):
            row = [rng.randint(fmt.min_code, 0) for _ in range(length)]
            row[rng.randrange(length)] = fmt.max_code
            out.append(row)
        return out
    flat = _stimulus(fmt, kind, rows * length, seed)
    return [flat[i * length:(i + 1) * length] for i in range(rows)]


@pytest.mark.sim
@pytest.mark.parametrize("src,out_frac,length,par,kind", SOFTMAX_TABLE)
def test_softmax(src, out_frac, length, par, kind, tmp_path):
    in_fmt, rows = FixedFormat(*src), 60
    inputs = _rows(in_fmt, kind, rows, length, sum(src) + length + par)
    expected = QuantSoftmax(in_fmt, out_frac).forward_codes(torch.tensor(inputs))
    if kind == "huge":
        assert sorted(expected[0].tolist())[-2:] == [0, 1 << out_frac]
    params = softmax_parameters(in_fmt, out_frac, length, par)
    results = simulate(f"softmax{src}o{out_frac}n{length}x{par}{kind}".replace(" ", ""), "softmax", params,
                       sum(inputs, []), expected.flatten().tolist(), in_width=in_fmt.width, out_width=out_frac + 1,
                       out_par=par, vectors=rows, work_dir=tmp_path,
                       cycles_per_vector=softmax_cycles(length, par, params)[0])
    assert results["mismatches"] == 0, results["examples"]
    assert results["out_beats"] == rows * length // par
    assert (results["initiation_interval"], results["latency_cycles"]) == softmax_cycles(length, par, params)


def test_softmax_parallelism_must_divide_the_row():
    with pytest.raises(ValueError, match="parallelism 3 does not divide the row length"):
        softmax_parameters(FixedFormat(16, 8), 8, 8, 3)


LAYER_NORM_TABLE = [  # (input, output, affine (width, frac), features, lanes, stimulus, eps)
    ((8, 4), (8, 4), (8, 6), 8, 1, "random", 1e-12),
    ((16, 8), (16, 8), (16, 10), 16, 4, "random", 1e-12),
    ((12, 6), (10, 5), (8, 6), 6, 3, "random", 1e-12),
    ((8, 3), (8, 4), (6, 4), 5, 5, "random", 1e-12),  # a whole row per beat
    ((8, 4), (12, 6), (8, 6), 32, 8, "random", 1e-5),  # an eps of many codes
    ((16, 8), (16, 8), (16, 10), 128, 16, "random", 1e-12),  # bert-tiny's hidden size
    ((16, 8), (16, 8), (16, 10), 8, 2, "equal"),  # every element the same: the bias alone
    ((16, 8), (16, 8), (16, 10), 8, 1, "huge"),  # one element far above the rest
    ((16, 8), (16, 8), (16, 10), 8, 2, "negative"),
    ((16, 8), (16, 8), (16, 10), 8, 4, "zeros"),
]


def _layer_norm(src, dst, affine, features, eps, seed):
    norm = QuantLayerNorm(features, FixedFormat(*src), FixedFormat(*dst), FixedFormat(*affine), eps)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        norm.weight.copy_(1 + torch.randn(features, generator=generator))
        norm.bias.copy_(torch.randn(features, generator=generator))
    return norm


@pytest.mark.sim
@pytest.mark.parametrize("src,dst,affine,features,par,kind,eps",
                         [row if len(row) == 7 else (*row, 1e-12) for row in LAYER_NORM_TABLE])
def test_layer_norm(src, dst, affine, features, par, kind, eps, tmp_path):
    seed, rows = sum(src) + features + par, 40
    norm = _layer_norm(src, dst, affine, features, eps, seed)
    inputs = _rows(norm.in_fmt, kind, rows, features, seed)
    expected = norm.forward_codes(torch.tensor(inputs))
    if kind == "equal":
        assert expected[0].tolist() == norm.forward_codes(torch.zeros(1, features, dtype=torch.long))[0].tolist()
    params = layer_norm_parameters(norm, par)
    cycles = layer_norm_cycles(features, par, params)
    results = simulate(f"layer_norm{src}{dst}{affine}n{features}x{par}{kind}{eps}".replace(" ", ""), "layer_norm",
                       params, sum(inputs, []), expected.flatten().tolist(), in_width=norm.in_fmt.width,
                       out_width=norm.out_fmt.width, out_par=par, vectors=rows, work_dir=tmp_path,
                       cycles_per_vector=cycles[0])
    assert results["mismatches"] == 0, results["examples"]
    assert results["out_beats"] == rows * features // par
    assert (results["initiation_interval"], results["latency_cycles"]) == cycles


def test_layer_norm_parallelism_must_divide_the_features():
    norm = _layer_norm((8, 4), (8, 4), (8, 6), 8, 1e-12, 0)
    with pytest.raises(ValueError, match="parallelism 3 does not divide the row length"):
        layer_norm_parameters(norm, 3)


MATMUL_TABLE = [  # (a, b, out (width, frac[, signed])), scale shift, (rows, inner, cols), (a, b, out) lanes,
    # B transposed (Q·Kᵀ) or not (A·V), stimulus[, rounding, overflow]
    ((8, 4), (8, 4), (8, 4), 0, (4, 8, 6), (1, 1, 1), False, "random"),
    ((8, 4), (8, 4), (10, 4), 3, (8, 16, 8), (4, 4, 2), True, "random"),  # Q·Kᵀ / sqrt(64)
    ((9, 8, False), (8, 4), (8, 4), 0, (6, 6, 4), (3, 4, 4), False, "random"),  # A·V: softmax codes by V
    ((8, 4), (6, 2), (12, 6), 0, (3, 4, 4), (4, 4, 4), True, "random"),  # fully parallel: one step, one group
    ((16, 8), (16, 8), (16, 8), 3, (4, 64, 8), (8, 8, 2), True, "random"),  # bert-tiny's head size
    ((8, 4), (8, 4), (8, 4), 0, (4, 8, 4), (2, 2, 2), False, "huge"),  # saturates
    ((8, 4), (8, 4), (8, 4), 0, (4, 8, 4), (8, 8, 1), True, "negative"),
    ((8, 4), (8, 4), (8, 4), 0, (4, 8, 4), (8, 4, 4), False, "zeros"),
    ((8, 4), (8, 4), (8, 4), 1, (4, 8, 4), (2, 2, 2), True, "equal"),
    ((8, 4), (8, 4), (8, 2), 2, (5, 6, 3), (2, 3, 3), False, "random", Rounding.FLOOR, Overflow.WRAP),
]


def _matrix(fmt: FixedFormat, kind: str, rows: int, cols: int, rng: random.Random) -> torch.Tensor:
    if kind == "equal":
        return torch.full((rows, cols), rng.randint(fmt.min_code, fmt.max_code))
    return torch.tensor(_stimulus(fmt, kind, rows * cols, rng.randrange(1 << 30))).reshape(rows, cols)


@pytest.mark.sim
@pytest.mark.parametrize("row", MATMUL_TABLE, ids=lambda row: f"{row[4]}x{row[5]}{row[7]}".replace(" ", ""))
def test_matmul(row, tmp_path):
    a_spec, b_spec, out_spec, shift, (rows, inner, cols), (a_par, b_par, out_par), transposed, kind, *modes = row
    matmul = QuantMatmul(FixedFormat(*a_spec), FixedFormat(*b_spec), FixedFormat(*out_spec), shift, *modes)
    rng, products = random.Random(rows * inner * cols), 6
    a_codes, b_codes, expected = [], [], []
    for _ in range(products):
        a, b = _matrix(matmul.a_fmt, kind, rows, inner, rng), _matrix(matmul.b_fmt, kind, inner, cols, rng)
        a_codes += a.flatten().tolist()
        b_codes += (b.T if transposed else b).flatten().tolist()
        expected += matmul.forward_codes(a, b).flatten().tolist()
    if kind == "huge":
        assert {matmul.out_fmt.min_code, matmul.out_fmt.max_code} <= set(expected)
    params = matmul_parameters(matmul, rows, inner, cols, a_par, b_par, out_par, transposed)
    results = simulate(f"matmul{row}".replace(" ", ""), "matmul", params, vectors=products, work_dir=tmp_path,
                       cycles_per_vector=matmul_cycles(params)[0],
                       ports={"in": {"s_axis_b": {"data": b_codes, "width": matmul.b_fmt.width},
                                     "s_axis_a": {"data": a_codes, "width": matmul.a_fmt.width}},
                              "out": {"m_axis": {"data": expected, "width": matmul.out_fmt.width, "par": out_par}}})
    assert results["mismatches"] == 0, results["examples"]
    assert results["out_beats"] == products * rows * cols // out_par
    assert (results["initiation_interval"], results["latency_cycles"]) == matmul_cycles(params)


def test_matmul_parallelism_must_divide():
    matmul = QuantMatmul(FixedFormat(8, 4), FixedFormat(8, 4), FixedFormat(8, 4))
    with pytest.raises(ValueError, match="A parallelism 3 does not divide a row of A"):
        matmul_parameters(matmul, 4, 8, 4, 3, 1, 1, False)
    with pytest.raises(ValueError, match="B parallelism 4 exceeds the A parallelism 2"):
        matmul_parameters(matmul, 4, 8, 4, 2, 4, 1, True)
