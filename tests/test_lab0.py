"""Lab 0 smoke preset: dropout counts 6 -> 0, the erase error, output equality, the input diff."""

import json

import pytest

from flow.labs import lab0


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab0")
    res = lab0.run("smoke", out=out, do_draw=True)
    return out, res


def test_results_files_written(result):
    out, _res = result
    for name in ("dropout.json", "inputs.json"):
        data = json.loads((out / name).read_text())
        assert data["model"]["kind"] == "scratch" and data["preset"] == "smoke"
    assert (out / "dropout_before.dot").is_file() and (out / "inputs_full.dot").is_file()


def test_dropout_six_before_zero_after_and_outputs_unchanged(result):
    d = result[1]["dropout"]
    assert d["dropout_before"] == 6 and d["dropout_after"] == 0
    assert d["attention_dropout_before"] == 2 and d["attention_dropout_after"] == 0
    assert d["train_graph_is_stochastic"] is True
    assert d["after_removal_deterministic"] is True
    assert d["after_removal_equals_eager_eval"] is True
    assert d["eval_mode_graph_equals_eager_eval"] is True
    assert d["graph_nodes_before"] - d["graph_nodes_after"] == 6
    rep = d["graph_report"]
    assert rep["ops_by_kind"]["dropout"] == 6 and rep["ops_by_kind"]["linear"] == 14
    assert rep["parameters_total"] == 4_386_178 and rep["parameters_by_module"]["classifier"] == 258


def test_wrong_way_error_names_node_and_users(result):
    w = result[1]["dropout"]["wrong_way"]
    assert w["error"].startswith("RuntimeError: Tried to erase Node dropout but it still had")
    assert f"{len(w['users'])} users" in w["error"]
    assert all(u in w["error"] for u in w["users"])
    assert w["dropout_after_failed_erase"] == 6


def test_input_diff_default_mask_and_loss(result):
    i = result[1]["inputs"]
    d = i["diff_full_vs_ids_only"]
    only_full = {r["name"]: r for r in d["only_a"]}
    assert d["only_b"] == []
    # the inputs themselves
    assert only_full["attention_mask"]["op"] == "input attention_mask" and only_full["labels"]["op"] == "input labels"
    # the loss and the reshapes feeding it vanish without labels
    loss = [r for r in d["only_a"] if r["module"] == "" and not r["op"].startswith("input")]
    assert sorted(r["op"] for r in loss) == ["cross_entropy_loss", "view", "view"]
    assert i["loss_nodes_full"] == ["cross_entropy_loss"] and i["loss_nodes_ids_only"] == []
    assert i["outputs_full"] == ["cross_entropy_loss", "linear_13"] and i["outputs_ids_only"] == ["linear_13"]
    # with attention_mask the attention mask is computed from it (padding rows are masked) ...
    for fact in i["mask_facts"]["full"]:
        assert fact["depends_on_inputs"] == ["attention_mask"] and fact["all_ones"] is False
    # ... without it the model builds a default all-ones mask of shape (batch, 1, len, len) from the shape alone
    for fact in i["mask_facts"]["ids_only"]:
        assert fact["depends_on_inputs"] == [] and fact["all_ones"] is True
        assert fact["shape"] == [4, 1, 24, 24] and fact["dtype"] == "bool"
    mask_nodes = [r for r in i["mask_effect"]["only_a"] if r["module"] == "bert"]
    assert mask_nodes, "the padding-mask nodes of BertModel must vanish without attention_mask"
    assert any(r["kind"] == "creation" for r in mask_nodes)
    # the logits of padded rows change without the mask, unpadded rows do not
    change = i["logits_max_abs_change_without_mask"]
    assert change["padded_rows"] > 0 and change["unpadded_rows"] == 0
