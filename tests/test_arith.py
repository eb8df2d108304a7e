"""The transformer ops' integer kernels: exact roots and reciprocals, and the error of exp,
softmax, GELU and LayerNorm against float, pinned in output LSBs on exhaustive or seeded inputs."""
import json
import math
from fractions import Fraction

import pytest
import torch

from flow.arith import (
    exp_constants,
    int_exp,
    int_gelu,
    int_layer_norm,
    int_softmax,
    isqrt_floor,
    reciprocal_floor,
)
from flow.formats.fixed import FixedFormat
from flow.labs.activations import op_errors
from flow.paths import REPO_ROOT


def test_isqrt_floor_is_exact_exhaustively_and_on_wide_values():
    small = torch.arange(0, 1 << 16)
    assert isqrt_floor(small).tolist() == [math.isqrt(v) for v in small.tolist()]
    wide = torch.cat([torch.randint(0, 1 << 62, (3000,), generator=torch.Generator().manual_seed(0)),
                      torch.tensor([(1 << 62) - 1, ((1 << 31) - 1) ** 2, ((1 << 31) - 1) ** 2 - 1])])
    assert isqrt_floor(wide).tolist() == [math.isqrt(v) for v in wide.tolist()]


def test_reciprocal_floor_is_floor_division_and_zero_for_an_empty_row():
    d = torch.arange(0, 5000)
    assert reciprocal_floor(d, 20).tolist() == [0] + [(1 << 20) // v for v in range(1, 5000)]


@pytest.mark.parametrize("bad, message", [
    (lambda: isqrt_floor(torch.tensor([-1])), "must be >= 0"),
    (lambda: isqrt_floor(torch.tensor([1.0])), "int64"),
    (lambda: exp_constants(2), "too narrow for the exp range"),
    (lambda: int_exp(torch.tensor([1]), 8, 8), "subtract the row's maximum"),
    (lambda: int_softmax(torch.zeros(2, 4, dtype=torch.int64), 8, 30, guard=8), "bit limit"),
    (lambda: int_layer_norm(torch.zeros(1, 4, dtype=torch.int64), FixedFormat(40, 8), torch.ones(4).long(), 0,
                            torch.zeros(4).long(), 0, FixedFormat(8, 4)), "bit limit"),
])
def test_bad_parameters_are_one_line_errors(bad, message):
    with pytest.raises((ValueError, TypeError), match=message) as caught:
        bad()
    assert "\n" not in str(caught.value)


# (input frac, output frac, bound on the max error in output LSBs over every input of 16 bits)
EXP_BOUNDS = [(4, 8, 0.87), (6, 8, 1.04), (8, 8, 1.04), (10, 8, 1.06), (8, 12, 9.5), (8, 16, 144.0)]


@pytest.mark.parametrize("frac, out_frac, bound", EXP_BOUNDS)
def test_exp_error_against_float_on_every_input(frac, out_frac, bound):
    codes = torch.arange(-(1 << 15), 1)
    got = int_exp(codes, frac, out_frac).double()
    error = (got - torch.exp(codes.double() / 2 ** frac) * 2 ** out_frac).abs()
    assert error.max() <= bound
    # the polynomial's and constants' relative error stays under 0.33 % plus the output's half LSB
    assert (error <= 0.0033 * torch.exp(codes.double() / 2 ** frac) * 2 ** out_frac + 0.5).all()


def _softmax_error(codes: torch.Tensor, frac: int, out_frac: int) -> torch.Tensor:
    got = int_softmax(codes, frac, out_frac).double()
    return (got - torch.softmax(codes.double() / 2 ** frac, -1) * 2 ** out_frac).abs()


# (input frac, output frac, row length, bound on the max error in output LSBs over 2,000 seeded rows)
SOFTMAX_BOUNDS = [(4, 8, 8, 0.66), (4, 8, 128, 0.71), (8, 8, 8, 0.67), (8, 8, 128, 0.58), (6, 12, 128, 3.6),
                  (8, 16, 128, 32.0)]


@pytest.mark.parametrize("frac, out_frac, length, bound", SOFTMAX_BOUNDS)
def test_softmax_error_against_float_on_seeded_rows(frac, out_frac, length, bound):
    codes = torch.randint(-(1 << 11), 1 << 11, (2000, length), generator=torch.Generator().manual_seed(length))
    assert _softmax_error(codes, frac, out_frac).max() <= bound


def test_softmax_is_within_half_an_lsb_plus_guard_of_its_own_exps():
    codes = torch.randint(-(1 << 11), 1 << 11, (50, 16), generator=torch.Generator().manual_seed(1))
    out_frac, guard = 8, 4
    got = int_softmax(codes, 8, out_frac, guard=guard)
    exps = int_exp(codes - codes.amax(-1, keepdim=True), 8, out_frac + guard)
    for row, exp_row in zip(got.tolist(), exps.tolist()):
        total = sum(exp_row)
        for value, e in zip(row, exp_row):
            assert abs(Fraction(value) - Fraction(e * 2 ** out_frac, total)) <= Fraction(1, 2) + Fraction(1, 2 ** guard)


def test_softmax_extreme_rows():
    frac, out_frac = 6, 8
    equal = torch.full((3, 16), -77, dtype=torch.int64)
    assert int_softmax(equal, frac, out_frac).tolist() == [[16] * 16] * 3  # 256 / 16
    huge = torch.zeros(1, 32, dtype=torch.int64)
    huge[0, 5] = 1 << 14
    assert int_softmax(huge, frac, out_frac).tolist() == [[0] * 5 + [256] + [0] * 26]
    negative = -torch.arange(1, 129, dtype=torch.int64).reshape(1, 128) * 3
    assert _softmax_error(negative, frac, out_frac).max() <= 0.6
    assert int_softmax(torch.zeros(1, 7, dtype=torch.int64), frac, out_frac).tolist() == [[37] * 7]  # 256/7 = 36.6


@pytest.mark.parametrize("frac, bound", [(4, 0.65), (6, 1.6), (8, 5.2)])
def test_gelu_error_against_float_on_every_input(frac, bound):
    fmt = FixedFormat(16, frac)
    codes = torch.arange(fmt.min_code, fmt.max_code + 1)
    got = int_gelu(codes, fmt, fmt).double()
    error = (got - torch.nn.functional.gelu(codes.double() / 2 ** frac) * 2 ** frac).abs()
    assert error.max() <= bound
    assert error.max() / 2 ** frac <= 0.041  # I-BERT's erf: about 0.02 absolute at worst, plus rounding
    assert got[-1] == fmt.max_code and got[0] == 0  # identity far right, zero far left


def _layer_norm(codes, in_fmt, out_fmt, n, seed):
    g = torch.Generator().manual_seed(seed)
    wf = FixedFormat(16, 10)
    weight, bias = wf.quantize(torch.randn(n, generator=g)), wf.quantize(torch.randn(n, generator=g))
    got = int_layer_norm(codes, in_fmt, weight, 10, bias, 10, out_fmt).double()
    ref = torch.nn.functional.layer_norm(codes.double() / 2 ** in_fmt.frac, (n,), weight.double() / 2 ** 10,
                                         bias.double() / 2 ** 10, eps=1e-12)
    return got, ref * 2 ** out_fmt.frac, bias


@pytest.mark.parametrize("n, in_frac, bound", [(8, 4, 0.56), (8, 8, 0.56), (128, 4, 0.60), (128, 8, 0.60),
                                               (512, 6, 0.60)])
def test_layer_norm_error_against_float_on_seeded_rows(n, in_frac, bound):
    in_fmt, out_fmt = FixedFormat(16, in_frac), FixedFormat(16, 8)
    codes = in_fmt.quantize(torch.randn(500, n, generator=torch.Generator().manual_seed(n)) * 3)
    got, ref, _ = _layer_norm(codes, in_fmt, out_fmt, n, seed=n)
    assert (got - ref).abs().max() <= bound


def test_layer_norm_extreme_rows():
    in_fmt, out_fmt, n = FixedFormat(12, 4), FixedFormat(16, 8), 64
    equal = torch.full((2, n), -300, dtype=torch.int64)
    got, _, bias = _layer_norm(equal, in_fmt, out_fmt, n, seed=3)
    assert got.tolist() == [torch.floor(bias.double() / 4 + 0.5).tolist()] * 2  # bias at frac 10 -> 8, ties up
    huge = torch.zeros(1, n, dtype=torch.int64)
    huge[0, 9] = in_fmt.max_code
    zeros_and_negative = torch.cat([huge, -torch.arange(n).reshape(1, n), torch.zeros(1, n, dtype=torch.int64)])
    got, ref, bias = _layer_norm(zeros_and_negative, in_fmt, out_fmt, n, seed=4)
    assert (got[:2] - ref[:2]).abs().max() <= 0.6
    assert (got[2] == torch.floor(bias.double() / 4 + 0.5)).all()


# On real activations: lab 1's seed-0 bert-tiny (integer ops in place) on two test reviews, the
# inputs its softmaxes, GELUs and LayerNorms receive (flow.labs.activations). Bounds in output LSBs.
REAL_BOUNDS = {"softmax": (0.6, 0.3), "gelu": (3.2, 1.6), "layer_norm": (0.55, 0.26)}  # (max, mean)


def test_error_on_real_bert_tiny_activations_is_pinned_and_matches_the_results_file():
    stored = REPO_ROOT / "results" / "integer_ops" / "activations_seed0.pt"
    errors = op_errors(torch.load(stored))
    assert {row["op"] for row in errors} == set(REAL_BOUNDS)
    assert [row["op"] for row in errors].count("layer_norm") == 5  # embeddings + 2 per layer
    for row in errors:
        worst, mean = REAL_BOUNDS[row["op"]]
        assert row["max_lsb"] <= worst and row["mean_lsb"] <= mean, row
    assert json.loads(stored.with_suffix(".json").read_text())["errors"] == errors
