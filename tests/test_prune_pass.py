"""flow.passes.prune: weight masks (random, l1; local, global), activation pruning, reports, compile."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import flow
from flow.models.mlp import build_mlp
from flow.nn.format_linear import FormatLinear
from flow.passes import make_permanent, prune_module, quantize_module, remove_activation_pruning, sparsity_report
from tests.bert_helpers import padded_batch, tiny_bert

FIXED_8_4 = {k: v for op in ("data_in", "weight", "bias", "data_out")
             for k, v in ((f"{op}_width", 8), (f"{op}_frac_width", 4))}


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return build_mlp(64, [16], 10)


def pruned(layer: nn.Linear) -> torch.Tensor:
    return ~parametrize_mask(layer)


def parametrize_mask(layer: nn.Module) -> torch.Tensor:
    return layer.parametrizations["weight"][0].mask


@pytest.mark.parametrize("method", ["random", "l1"])
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.55, 0.99])
def test_local_sparsity_per_layer(method, sparsity):
    model = mlp()
    report = prune_module(model, sparsity, method=method, scope="local", seed=3)
    assert [r.path for r in report.layers] == ["fc1", "fc2"]
    for row, layer in zip(report.layers, (model.fc1, model.fc2)):
        n = layer.weight.numel()
        assert row.numel == n and row.masked == round(sparsity * n) == int(pruned(layer).sum())
        assert abs(row.sparsity - sparsity) <= 1 / n
        assert row.zeros == int((layer.weight == 0).sum()) == row.masked  # random init has no exact zeros
        assert (layer.weight[pruned(layer)] == 0).all()
    assert report.overall == (report.layers[0].masked + report.layers[1].masked) / (1024 + 160)


def test_random_is_seeded():
    masks = []
    for seed in (1, 1, 2):
        model = mlp()
        prune_module(model, 0.5, seed=seed)
        masks.append(parametrize_mask(model.fc1))
    assert torch.equal(masks[0], masks[1]) and not torch.equal(masks[0], masks[2])


def test_l1_local_prunes_the_smallest_magnitudes_of_each_layer():
    model = mlp()
    original = [model.fc1.weight.detach().clone(), model.fc2.weight.detach().clone()]
    prune_module(model, 0.4, method="l1", scope="local")
    for layer, w in zip((model.fc1, model.fc2), original):
        k = round(0.4 * w.numel())
        oracle = torch.zeros(w.numel(), dtype=torch.bool)
        oracle[w.abs().flatten().sort(stable=True).indices[:k]] = True
        assert torch.equal(pruned(layer).flatten(), oracle)
        assert w.abs()[pruned(layer)].max() <= w.abs()[~pruned(layer)].min()


def test_l1_global_prunes_the_globally_smallest_magnitudes():
    model = mlp()
    model.fc2.weight.data *= 0.2  # one layer much smaller: global pruning takes more of it
    weights = [model.fc1.weight.detach().clone(), model.fc2.weight.detach().clone()]
    report = prune_module(model, 0.5, method="l1", scope="global")
    magnitudes = torch.cat([w.abs().flatten() for w in weights])
    k = round(0.5 * magnitudes.numel())
    oracle = torch.zeros(magnitudes.numel(), dtype=torch.bool)
    oracle[magnitudes.sort(stable=True).indices[:k]] = True
    got = torch.cat([pruned(model.fc1).flatten(), pruned(model.fc2).flatten()])
    assert torch.equal(got, oracle)
    threshold = magnitudes.sort().values[k - 1]
    assert report.layer("fc1").masked == int((weights[0].abs() <= threshold).sum())
    assert report.layer("fc2").masked == int((weights[1].abs() <= threshold).sum())
    assert report.layer("fc2").sparsity > 0.9 > 0.5 > report.layer("fc1").sparsity
    assert report.overall == k / magnitudes.numel() and abs(report.overall - 0.5) <= 1 / magnitudes.numel()
    assert report.overall_weights == report.overall


def test_random_global_reaches_the_overall_target():
    report = prune_module(mlp(), 0.37, method="random", scope="global", seed=5)
    assert sum(r.masked for r in report.layers) == round(0.37 * 1184)
    assert report.layer("fc1").masked != round(0.37 * 1024)  # layers differ; only the total is fixed


def test_report_table_and_recount_from_weights():
    model = mlp()
    report = prune_module(model, 0.25, method="l1")
    text = report.table()
    assert "fc1" in text and "overall" in text and "target 0.25 (l1, local)" in text
    with torch.no_grad():
        model.fc1.parametrizations["weight"].original[0, 0] = 0.0  # an exact zero the mask keeps
    recount = sparsity_report(model)
    kept_zero = bool(parametrize_mask(model.fc1)[0, 0])
    assert recount.layer("fc1").masked == 256 and recount.layer("fc1").zeros == 256 + kept_zero


def test_masks_survive_training():
    model = mlp()
    prune_module(model, 0.6, method="l1", scope="global")
    masks = {name: parametrize_mask(layer).clone() for name, layer in (("fc1", model.fc1), ("fc2", model.fc2))}
    originals = model.fc1.parametrizations["weight"].original.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        x, y = torch.randn(16, 64, generator=gen), torch.randint(0, 10, (16,), generator=gen)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    assert not torch.equal(model.fc1.parametrizations["weight"].original[masks["fc1"]], originals[masks["fc1"]])
    for name, layer in (("fc1", model.fc1), ("fc2", model.fc2)):
        assert torch.equal(layer.weight == 0, ~masks[name])
    x = torch.randn(4, 64)
    manual = nn.functional.linear(torch.relu(nn.functional.linear(x, model.fc1.weight * masks["fc1"], model.fc1.bias)),
                                  model.fc2.weight * masks["fc2"], model.fc2.bias)
    assert torch.equal(model(x), manual)
    assert sparsity_report(model).overall_weights == round(0.6 * 1184) / 1184


def test_prune_after_quantize_keeps_zero_codes_through_training():
    model = mlp()
    quantize_module(model, {"default": FIXED_8_4})
    report = prune_module(model, 0.5, method="random", seed=1)
    assert report.layers[0].type == "FormatLinear"
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(8, 64)).square().sum().backward()
        optimizer.step()
    mask = parametrize_mask(model.fc1)
    assert (model.fc1.quantized_weight()[~mask] == 0).all()
    assert int((model.fc1.weight == 0).sum()) == 512


def test_pruning_again_grows_the_mask():
    model = mlp()
    prune_module(model, 0.3, method="random", seed=0)
    first = pruned(model.fc1).clone()
    report = prune_module(model, 0.6, method="random", seed=9)
    assert (pruned(model.fc1) >= first).all() and report.layer("fc1").masked == round(0.6 * 1024)
    assert len(model.fc1.parametrizations["weight"]) == 1


@pytest.mark.parametrize("sparsity", [0.25, 0.5])
def test_activation_pruning_zeroes_the_smallest_inputs_per_sample(sparsity):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 3))
    report = prune_module(model, 0.0, activations=True)
    assert report.layers[0].activation_sparsity == 0.0
    report = prune_module(model, sparsity, activations=True)  # weights too; re-pruning updates the same hook
    assert report.layers[0].masked == round(sparsity * 60)
    assert report.layers[0].activation_sparsity == sparsity and len(model[0]._forward_pre_hooks) == 1
    x = torch.randn(4, 20)
    seen = []
    model[0].register_forward_hook(lambda m, args, out: seen.append(args[0]))
    y = model(x)
    drop = round(sparsity * 20)
    assert ((seen[0] == 0).sum(dim=1) == drop).all()
    for row, kept in zip(x, seen[0]):
        assert row.abs()[kept == 0].max() <= row.abs()[kept != 0].min()
    assert torch.equal(y, nn.functional.linear(torch.where(seen[0] == 0, 0.0, x), model[0].weight, model[0].bias))


def test_activation_pruning_counts_per_sample_over_all_other_dims():
    model = nn.Sequential(nn.Linear(8, 2))
    prune_module(model, 0.25, activations=True)
    seen = []
    model[0].register_forward_hook(lambda m, args, out: seen.append(args[0]))
    model(torch.randn(3, 5, 8))
    assert ((seen[0] == 0).sum(dim=(1, 2)) == 10).all()
    assert remove_activation_pruning(model) == 1 and len(model[0]._forward_pre_hooks) == 0


def test_bert_tiny_global_l1_with_activations():
    model = tiny_bert()
    quantize_module(model, {"default": {k: v for k, v in FIXED_8_4.items() if not k.startswith("data_out")}})
    report = prune_module(model, 0.5, method="l1", scope="global", activations=True)
    assert len(report.layers) == 14 and report.overall == round(0.5 * report.numel) / report.numel
    assert torch.isfinite(model(**padded_batch()).loss)


def test_name_targets():
    model = mlp()
    report = prune_module(model, 0.5, targets=("fc1",))
    assert [r.path for r in report.layers] == ["fc1"] and not parametrize.is_parametrized(model.fc2)
    bert = tiny_bert()
    report = prune_module(bert, 0.5, targets=("*.attention.self.*", "classifier"))
    assert len(report.layers) == 7


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sparsity": 1.5}, "sparsity must be a fraction in [0, 1)"),
    ({"method": "l2"}, "method 'l2' is not known; use one of random, l1"),
    ({"scope": "layer"}, "scope 'layer' is not known"),
    ({"targets": ("fc3",)}, "prune target key 'fc3' names no module of the model; did you mean 'fc"),
    ({"targets": (nn.ReLU,)}, "'act1' (ReLU) has no weight tensor"),
    ({"targets": (nn.Conv2d,)}, "no module of Sequential matches targets"),
])
def test_bad_arguments(kwargs, message):
    args = {"sparsity": 0.5, **kwargs}
    with pytest.raises(ValueError) as error:
        prune_module(mlp(), **args)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_pruned_fixed_point_mlp_compiles_after_make_permanent():
    model = mlp()
    x = torch.randn(8, 64)
    prune_module(model, 0.5, method="l1", scope="local")
    zeros = [model.fc1.weight == 0, model.fc2.weight == 0]
    assert make_permanent(model) == 2
    assert type(model.fc1) is nn.Linear and not parametrize.is_parametrized(model.fc1)
    assert set(model.state_dict()) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    assert torch.equal(model.fc1.weight == 0, zeros[0])
    design = flow.compile(model, x[:2], quant={"default": {"weight_width": 8, "weight_frac_width": 4}})
    stages = design.graph.linear_stages
    for stage, zero in zip(stages, zeros):
        codes = stage.layer.weight_codes()
        assert (codes[zero] == 0).all()
        assert int((codes == 0).sum()) >= int(zero.sum()) == round(0.5 * zero.numel())
    assert design.reference(design.quantize_inputs(x)).shape == (8, 10)


def test_make_permanent_after_quantize_keeps_format_linear():
    model = mlp()
    quantize_module(model, {"default": FIXED_8_4})
    prune_module(model, 0.5, method="l1")
    assert make_permanent(model) == 2
    assert type(model.fc1) is FormatLinear and int((model.fc1.weight == 0).sum()) == 512
