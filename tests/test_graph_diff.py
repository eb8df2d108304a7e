"""Node-level diffs between captures of the same model with different inputs."""

from flow.graph import capture, diff_graphs
from tests.bert_helpers import padded_batch, tiny_bert


def test_identical_captures_have_empty_diff():
    model, batch = tiny_bert(), padded_batch()
    d = diff_graphs(capture(model, batch, mode="eval"), capture(model, batch, mode="eval"))
    assert d.only_a == [] and d.only_b == [] and d.rewired == []


def test_labels_add_only_the_loss_and_its_reshapes():
    model, batch = tiny_bert(), padded_batch()
    with_labels = capture(model, batch, inputs=["input_ids", "labels"], mode="eval")
    without = capture(model, batch, inputs=["input_ids"], mode="eval")
    d = diff_graphs(with_labels, without)
    assert d.only_b == []
    ops = sorted(r.op for r in d.only_a)
    assert ops == ["cross_entropy_loss", "input labels", "view", "view"]
    assert all(r.module == "" for r in d.only_a)  # the loss is top-level code, not a module
    text = d.format("with", "without")
    assert "cross_entropy_loss" in text
