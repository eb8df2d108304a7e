"""BERT's pooler components against their exact references, with random valid gaps and
backpressure: tanh (flow.nn.QuantTanh, every input code of several formats) and select_token (a
sequence's token i, the others dropped)."""
import random

import pytest
import torch

from flow.circuits.components import ELEMENTWISE_CYCLES, select_token_parameters, tanh_cycles, tanh_parameters
from flow.formats.fixed import FixedFormat
from flow.nn import QuantTanh
from flow.ops.select_token import SelectTokenStage
from flow.simulation.stimulus import random_codes
from tests.sim.harness import simulate

TANH_TABLE = [  # (input (width, frac), output frac, lanes, stimulus): "all" is every input code
    ((8, 4), 8, 1, "all"), ((10, 5), 6, 2, "all"), ((4, 3), 3, 4, "all"), ((6, 3), 7, 3, "all"),
    ((12, 8), 8, 3, "random"), ((16, 10), 10, 2, "random"), ((16, 12), 12, 1, "huge"),
    ((8, 4), 8, 2, "zeros"), ((8, 3), 4, 4, "max"), ((12, 6), 8, 2, "min"),
]


def _tanh_codes(fmt: FixedFormat, kind: str, par: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    if kind == "all":  # every code, then extremes, padded to whole beats
        codes = list(range(fmt.min_code, fmt.max_code + 1))
        rng.shuffle(codes)
        codes += [fmt.min_code, fmt.max_code, 0] * par
        return codes[:len(codes) - len(codes) % par] if len(codes) % par else codes
    count = par * 200
    if kind == "zeros":
        return [0] * count
    if kind == "max":
        return [fmt.max_code] * count
    if kind == "min":
        return [fmt.min_code] * count
    if kind == "huge":
        return [rng.choice([fmt.min_code, fmt.max_code, 0, -1, 1]) for _ in range(count)]
    return random_codes(fmt, count, rng)


@pytest.mark.sim
@pytest.mark.parametrize("src,out_frac,par,kind", TANH_TABLE)
def test_tanh(src, out_frac, par, kind, tmp_path):
    in_fmt = FixedFormat(*src)
    codes = _tanh_codes(in_fmt, kind, par, sum(src) + par)
    if kind == "all":
        assert set(codes) == set(range(in_fmt.min_code, in_fmt.max_code + 1))
    module = QuantTanh(in_fmt, out_frac)
    expected = module.forward_codes(torch.tensor(codes)).tolist()
    parameters = tanh_parameters(in_fmt, out_frac, par)
    beats = len(codes) // par
    results = simulate(f"tanh{src}o{out_frac}x{par}{kind}".replace(" ", ""), "tanh", parameters,
                       codes, expected, in_width=in_fmt.width, out_width=module.out_fmt.width, out_par=par,
                       vectors=beats, work_dir=tmp_path)
    assert results["mismatches"] == 0, results["examples"]
    assert results["out_beats"] == beats
    assert (results["initiation_interval"], results["latency_cycles"]) == tanh_cycles(parameters)


SELECT_TOKEN_TABLE = [  # (element (width, frac), lanes, features, tokens, index, stimulus)
    ((8, 4), 1, 4, 3, 0, "random"), ((8, 4), 2, 4, 3, 0, "random"), ((16, 8), 4, 4, 5, 0, "random"),
    ((6, 2), 1, 1, 2, 1, "random"), ((12, 6), 3, 6, 4, 3, "max"), ((4, 1), 2, 8, 8, 2, "min"),
    ((8, 0), 1, 3, 7, 6, "zeros"), ((10, 4), 5, 10, 16, 0, "random"), ((1, 0), 1, 2, 2, 0, "random"),
]


@pytest.mark.sim
@pytest.mark.parametrize("src,par,features,tokens,index,kind", SELECT_TOKEN_TABLE)
def test_select_token(src, par, features, tokens, index, kind, tmp_path):
    fmt = FixedFormat(*src)
    samples = 60
    count = samples * tokens * features
    rng = random.Random(sum(src) + tokens)
    codes = {"max": [fmt.max_code] * count, "min": [fmt.min_code] * count, "zeros": [0] * count}.get(
        kind) or random_codes(fmt, count, rng)
    stage = SelectTokenStage("select", fmt, par, features, tokens, index)
    expected = stage.forward_codes(torch.tensor(codes).reshape(-1, features)).flatten().tolist()
    beats = features // par
    parameters = select_token_parameters(par * fmt.width, beats, tokens, index)
    results = simulate(f"select_token{src}x{par}f{features}t{tokens}i{index}{kind}".replace(" ", ""),
                       "select_token", parameters, codes, expected, in_width=fmt.width, out_width=fmt.width,
                       out_par=par, vectors=samples, cycles_per_vector=tokens * beats, work_dir=tmp_path)
    assert results["mismatches"] == 0, results["examples"]
    assert results["out_beats"] == samples * beats
    # the first kept beat leaves a cycle after it came; a sample's kept token every tokens x beats cycles
    assert results["latency_cycles"] == index * beats + ELEMENTWISE_CYCLES[1]
    assert results["initiation_interval"] == tokens * beats


def test_select_token_index_must_name_a_token():
    with pytest.raises(ValueError, match="outside a sequence of 3 tokens"):
        select_token_parameters(8, 1, 3, 3)
