"""key_mask (BERT's attention key mask on a scores stream) against flow.ops.key_mask.key_mask_codes:
scores and mask driven on two ports with random gaps and backpressure, every element compared."""
import random

import pytest
import torch

from flow.circuits.components import key_mask_cycles, key_mask_parameters
from flow.formats.fixed import FixedFormat
from flow.ops.key_mask import key_mask_codes
from flow.simulation.stimulus import random_codes
from tests.sim.harness import simulate

KEY_MASK_TABLE = [  # (scores (width, frac, signed), seq, rows, lanes per beat, mask pattern)
    ((8, 4, True), 4, 4, 1, "random"),
    ((8, 4, True), 8, 8, 2, "random"),
    ((16, 8, True), 16, 16, 4, "random"),
    ((8, 4, True), 8, 8, 8, "random"),       # a whole row a beat
    ((12, 6, True), 6, 6, 3, "one"),         # all masked but one key
    ((8, 2, True), 5, 5, 1, "none"),         # nothing masked
    ((8, 2, True), 8, 8, 4, "all"),          # everything masked
    ((6, 0, False), 8, 8, 2, "random"),      # unsigned scores: the lowest code is 0
    ((8, 4, True), 1, 1, 1, "random"),       # one token
    ((10, 3, True), 12, 3, 4, "padded"),     # fewer rows than keys: the mask stream sets the pace
    ((16, 10, True), 32, 32, 8, "padded"),   # trailing padding of every length
]


def _masks(pattern: str, seq: int, samples: int, rng: random.Random) -> list[list[int]]:
    if pattern == "none":
        return [[1] * seq for _ in range(samples)]
    if pattern == "all":
        return [[0] * seq for _ in range(samples)]
    if pattern == "one":
        masks = []
        for _ in range(samples):
            mask = [0] * seq
            mask[rng.randrange(seq)] = 1
            masks.append(mask)
        return masks
    if pattern == "padded":  # BERT's padding: real tokens first, then 0..seq-1 padded ones
        return [[1] * (seq - pad) + [0] * pad for pad in (rng.randrange(seq) for _ in range(samples))]
    return [[rng.randint(0, 1) for _ in range(seq)] for _ in range(samples)]


def _row_id(row):
    return "-".join(str(v) for v in row).replace(" ", "")


@pytest.mark.sim
@pytest.mark.parametrize("row", KEY_MASK_TABLE, ids=_row_id)
def test_key_mask(row, tmp_path):
    spec, seq, rows, par, pattern = row
    fmt = FixedFormat(*spec)
    samples = 40
    rng = random.Random(hash(row) & 0xFFFF)
    scores = random_codes(fmt, samples * rows * seq, rng)
    masks = _masks(pattern, seq, samples, rng)
    expected = key_mask_codes(torch.tensor(scores).view(samples, rows, seq), torch.tensor(masks), fmt)
    expected = expected.flatten().tolist()
    if pattern == "random":  # the mask really changes something, and leaves something
        assert expected != scores and fmt.min_code in expected
    mask_bits = [bit for mask in masks for bit in mask]
    ii, latency = key_mask_cycles(seq, rows, par)
    results = simulate(f"key_mask{row}", "key_mask", key_mask_parameters(fmt, seq, rows, par), vectors=samples,
                       work_dir=tmp_path, cycles_per_vector=ii,
                       ports={"in": {"s_axis": {"data": scores, "width": fmt.width},
                                     "s_axis_mask": {"data": mask_bits, "width": 1}},
                              "out": {"m_axis": {"data": expected, "width": fmt.width, "par": par}}})
    assert results["mismatches"] == 0, results["examples"]
    assert results["out_beats"] == samples * rows * seq // par
    assert results["in_beats"] == samples * (rows * seq // par + seq)
    assert (results["initiation_interval"], results["latency_cycles"]) == (ii, latency)
