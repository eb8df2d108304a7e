"""flow.labs.bert_search: every point of bert-tiny's hardware search space keeps weights that are not all
rounded to zero (the first version's 5- and 6-bit points did, so their logits ignored the review and
scored the class balance, 0.5), and a trial records its estimate and the share of reviews it calls
positive. A smoke size: hidden 32, 2 heads of 16, intermediate 64, 8 tokens, seeded random weights."""
from pathlib import Path

import optuna
import torch

from flow.config.load import load_config
from flow.labs import bert_rtl
from flow.labs.bert_search import PARS, WEIGHT_WIDTHS, BertHwSearch, at_chance, weight_frac

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "bert_tiny.toml"
SMOKE = {"bert.weights": "random", "bert.seq": 8, "bert.hidden_size": 32, "bert.intermediate_size": 64}


def _search(scale: float = 1.0) -> BertHwSearch:
    config = load_config(CONFIG, SMOKE)
    model = bert_rtl.base_model(config).model
    with torch.no_grad():  # bert-tiny's trained weights lie below 0.125; nn.Linear's init here below 0.18
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.mul_(scale)
    x = torch.randn(12, 8, 32, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1] * 6)
    return BertHwSearch.for_body(config, bert_rtl.BertBody(model).eval(), x, y)


def _params(search: BertHwSearch, width: int, par: int) -> dict:
    params = {f"{layer}.weight_width": width for layer in search.layers}
    return {**params, "par": par, "encoder.layer.0.intermediate.dense.out_par": par,
            "encoder.layer.1.intermediate.dense.out_par": par}


def test_weight_frac_puts_the_largest_weight_at_the_top_of_the_format():
    w = torch.tensor([0.11, -0.02])
    assert [weight_frac(w, width) for width in (3, 4, 8)] == [5, 6, 10]  # 0.11 <= 2^-3: 3 integer bits below 0
    assert weight_frac(torch.tensor([3.0]), 8) == 5 and weight_frac(torch.zeros(2), 4) == 3
    assert at_chance(0.55, 256) and not at_chance(0.57, 256)


def test_the_narrowest_point_of_the_space_still_reads_the_review():
    search = _search(scale=0.5)  # weights below 0.09, as bert-tiny's: s5.1 or s6.2 would round all to 0
    narrow = min(WEIGHT_WIDTHS)
    design = search.build(search.suggest(optuna.trial.FixedTrial(_params(search, narrow, min(PARS)))))
    config = search.design_config(search.suggest(optuna.trial.FixedTrial(_params(search, narrow, min(PARS)))))
    for layer in search.layers:
        table = config.quantization.table(layer)
        weight = dict(search.model.named_modules())[layer].weight
        codes = torch.round(weight * 2.0 ** table.weight_frac_width)
        assert table.weight_width == narrow and (codes != 0).float().mean() > 0.2, layer
    with torch.no_grad():
        logits = design.fake_quant_model()(search.val[0])
    assert logits[:, 1].unique().numel() > 3  # the logits depend on the input, not only on the biases


def test_a_trial_records_its_estimate_cycles_and_positive_share():
    search = _search()
    trial = optuna.trial.FixedTrial(_params(search, 8, 8))
    accuracy, cost, latency = search.objective(trial)
    est = trial.user_attrs["estimate"]
    assert 0.0 <= accuracy <= 1.0 and cost == est["LUT"] + est["DSP48E1"] > 0 and latency > 0
    assert trial.user_attrs["initiation_interval"] > 0 and 0.0 <= trial.user_attrs["positive_rate"] <= 1.0
    assert search.design_config(search.suggest(trial)).quantization.table("classifier").weight_frac_width == \
        weight_frac(search.model.classifier.weight, 8)
