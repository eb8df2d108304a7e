"""broadcast, add, concat and concat_lockstep (the components that fork and join streams) against
the Python reference: one table each, every port driven and checked by the two-port testbench."""
import itertools
import random

import pytest
import torch

from flow.circuits.components import (
    ADD_CYCLES,
    BROADCAST_CYCLES,
    CONCAT_LOCKSTEP_CYCLES,
    add_parameters,
    broadcast_parameters,
    concat_cycles,
    concat_lockstep_parameters,
    concat_parameters,
)
from flow.formats.fixed import FixedFormat
from flow.nn import Concat, QuantAdd
from flow.simulation.stimulus import random_codes
from tests.sim.harness import simulate

BROADCAST_TABLE = [1, 8, 40]  # beat bits

# (a: width, frac, signed), (b: ...), (out: ...), rounding, overflow, lanes per beat
ADD_TABLE = [
    ((8, 4, True), (8, 4, True), (8, 4, True), "half_up", "saturate", 1),      # same format: saturates
    ((8, 4, True), (8, 4, True), (8, 4, True), "floor", "wrap", 3),            # same format: wraps
    ((8, 4, True), (6, 2, True), (6, 2, True), "half_even", "saturate", 4),    # a finer than b
    ((6, 1, True), (8, 5, False), (8, 3, True), "floor", "wrap", 3),           # signed + unsigned, b finer
    ((7, 3, False), (5, 0, True), (6, 1, False), "half_up", "saturate", 1),    # unsigned + signed -> unsigned
    ((8, 0, False), (4, 2, False), (7, 1, False), "half_even", "saturate", 2),  # unsigned + unsigned
    ((5, -3, True), (8, 2, True), (10, 0, True), "half_even", "wrap", 1),      # negative frac
    ((4, 7, True), (3, 9, False), (4, 6, True), "half_up", "saturate", 2),     # frac larger than width
    ((6, 2, True), (6, 1, True), (9, 4, True), "half_up", "saturate", 1),      # output finer: no rounding
    ((1, 0, True), (1, 0, False), (2, 0, True), "floor", "saturate", 1),       # width-1 operands
    ((1, -1, False), (1, 2, True), (2, 1, False), "half_even", "saturate", 3),  # width 1, shifted
    ((16, 8, True), (16, 12, True), (16, 10, True), "half_even", "saturate", 4),  # wide
    ((16, 0, True), (12, 0, False), (12, 0, True), "floor", "wrap", 2),        # wide, wrap
]
SATURATING_ROWS = [ADD_TABLE[0], ADD_TABLE[2], ADD_TABLE[10]]  # rows whose sums leave the output range

CONCAT_TABLE = [  # (element width, lanes per beat, A beats per vector, B beats per vector)
    (8, 1, 1, 1),
    (1, 1, 1, 1),
    (6, 2, 3, 1),
    (4, 3, 1, 4),
    (16, 4, 2, 5),
    (3, 2, 5, 2),
]

CONCAT_LOCKSTEP_TABLE = [  # (element width, signed, A elements, B elements): each input one beat a vector
    (8, True, 1, 1),
    (1, False, 1, 1),
    (1, True, 7, 3),
    (4, False, 3, 8),
    (6, True, 16, 2),
    (16, True, 2, 9),
    (12, False, 5, 5),
    (3, True, 64, 1),
    (2, False, 1, 64),
    (16, False, 32, 32),
]


def _row_id(row):
    return "-".join(str(v) for v in row).replace(" ", "")


@pytest.mark.sim
@pytest.mark.parametrize("width", BROADCAST_TABLE)
def test_broadcast_gives_every_beat_to_both_outputs(width, tmp_path):
    beats = 400
    codes = random_codes(FixedFormat(width, 0, False), beats, random.Random(width))
    out = {"data": codes, "width": width, "par": 1}
    results = simulate(f"broadcast{width}", "broadcast", broadcast_parameters(width), vectors=beats,
                       work_dir=tmp_path, ports={"in": {"s_axis": {"data": codes, "width": width}},
                                                 "out": {"m_axis_a": out, "m_axis_b": dict(out)}})
    assert results["mismatches"] == 0, results["examples"]
    assert {p: r["out_beats"] for p, r in results["ports"].items()} == {"m_axis_a": beats, "m_axis_b": beats}
    assert results["in_beats"] == beats
    assert (results["initiation_interval"], results["latency_cycles"]) == BROADCAST_CYCLES


def _add_operands(a_fmt, b_fmt, par, rng):
    """Every (a, b) pair when there are few, else random codes with the extremes; a multiple of par."""
    pairs = (a_fmt.max_code - a_fmt.min_code + 1) * (b_fmt.max_code - b_fmt.min_code + 1)
    a, b = [], []
    if pairs <= 4096:
        for x, y in itertools.product(range(a_fmt.min_code, a_fmt.max_code + 1),
                                      range(b_fmt.min_code, b_fmt.max_code + 1)):
            a.append(x)
            b.append(y)
    count = max(par * 150, len(a) + (-len(a)) % par)
    a += random_codes(a_fmt, count - len(a), rng) if count > len(a) else []
    b += random_codes(b_fmt, count - len(b), rng) if count > len(b) else []
    return a, b


@pytest.mark.sim
@pytest.mark.parametrize("row", ADD_TABLE, ids=_row_id)
def test_add(row, tmp_path):
    a_spec, b_spec, out_spec, rounding, overflow, par = row
    a_fmt, b_fmt, out_fmt = FixedFormat(*a_spec), FixedFormat(*b_spec), FixedFormat(*out_spec)
    a, b = _add_operands(a_fmt, b_fmt, par, random.Random(hash(row) & 0xFFFF))
    a_t, b_t = torch.tensor(a, dtype=torch.int64), torch.tensor(b, dtype=torch.int64)
    expected = QuantAdd(a_fmt, b_fmt, out_fmt, rounding, overflow).forward_codes(a_t, b_t).tolist()
    if row in SATURATING_ROWS:  # the sums really leave the range, and saturation clips them
        wrapped = QuantAdd(a_fmt, b_fmt, out_fmt, rounding, "wrap").forward_codes(a_t, b_t).tolist()
        assert wrapped != expected
        assert {out_fmt.max_code, out_fmt.min_code} & set(expected)
    results = simulate(f"add{row}", "add", add_parameters(a_fmt, b_fmt, out_fmt, rounding, overflow, par),
                       vectors=len(a) // par, work_dir=tmp_path,
                       ports={"in": {"s_axis_a": {"data": a, "width": a_fmt.width},
                                     "s_axis_b": {"data": b, "width": b_fmt.width}},
                              "out": {"m_axis": {"data": expected, "width": out_fmt.width, "par": par}}})
    assert results["mismatches"] == 0, results["examples"]
    assert results["out_beats"] == len(a) // par
    assert (results["initiation_interval"], results["latency_cycles"]) == ADD_CYCLES


def _check_concat(row, top: str, parameters: dict, fmt: FixedFormat, a: tuple[int, int], b: tuple[int, int],
                  out_par: int, cycles: tuple[int, int], tmp_path) -> None:
    """Random vectors of a and b (``(elements, elements per beat)`` each, extremes included) through
    a concatenation: every element compared, beat counts, and II and latency equal to ``cycles``."""
    vectors = 120
    rng = random.Random(hash(row) & 0xFFFF)
    a_codes = random_codes(fmt, vectors * a[0], rng)
    b_codes = random_codes(fmt, vectors * b[0], rng)
    expected = Concat().forward_codes(torch.tensor(a_codes).view(vectors, -1),
                                      torch.tensor(b_codes).view(vectors, -1)).flatten().tolist()
    assert expected[: a[0] + b[0]] == a_codes[: a[0]] + b_codes[: b[0]]  # a's elements first
    results = simulate(f"{top}{row}", top, parameters, vectors=vectors, work_dir=tmp_path, cycles_per_vector=cycles[0],
                       ports={"in": {"s_axis_a": {"data": a_codes, "width": fmt.width},
                                     "s_axis_b": {"data": b_codes, "width": fmt.width}},
                              "out": {"m_axis": {"data": expected, "width": fmt.width, "par": out_par}}})
    assert results["mismatches"] == 0, results["examples"]
    assert results["in_beats"] == vectors * (a[0] // a[1] + b[0] // b[1])
    assert results["out_beats"] == vectors * (a[0] + b[0]) // out_par
    ii, latency = cycles
    assert (results["initiation_interval"], results["initiation_interval_max"], results["latency_cycles"]) == (
        ii, ii, latency)


@pytest.mark.sim
@pytest.mark.parametrize("row", CONCAT_TABLE, ids=_row_id)
def test_concat(row, tmp_path):
    width, par, a_beats, b_beats = row
    _check_concat(row, "concat", concat_parameters(width * par, a_beats, b_beats), FixedFormat(width, 0, True),
                  (a_beats * par, par), (b_beats * par, par), par, concat_cycles(a_beats, b_beats), tmp_path)


@pytest.mark.sim
@pytest.mark.parametrize("row", CONCAT_LOCKSTEP_TABLE, ids=_row_id)
def test_concat_lockstep(row, tmp_path):
    """Each input one beat a vector, the output one beat of both."""
    width, signed, a_elements, b_elements = row
    _check_concat(row, "concat_lockstep", concat_lockstep_parameters(width, a_elements, b_elements),
                  FixedFormat(width, 0, signed), (a_elements, a_elements), (b_elements, b_elements),
                  a_elements + b_elements, CONCAT_LOCKSTEP_CYCLES, tmp_path)
