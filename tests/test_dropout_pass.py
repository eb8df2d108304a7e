"""Dropout passes: count, wrong-way erase error, redirect-then-erase, eval-mode switch."""

import pytest
import torch

from flow.graph import capture
from flow.passes.dropout import count_dropout, dropout_nodes, remove_dropout, set_dropout_mode
from tests.bert_helpers import padded_batch, tiny_bert


@pytest.fixture()
def setup():
    model = tiny_bert()
    batch = padded_batch()
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    return model, inputs, capture(model, inputs, mode="train")


def _eager_eval(model, inputs):
    model.eval()
    with torch.no_grad():
        out = model(**inputs).logits
    model.train()
    return out


def test_count_six_dropouts_plus_two_in_attention(setup):
    _, _, g = setup
    _, info = count_dropout(g)
    assert info["dropout_nodes"] == 6 and info["attention_dropout"] == 2
    assert [n["module"] for n in info["nodes"]] == [
        "bert.embeddings.dropout",
        "bert.encoder.layer.0.attention.output.dropout", "bert.encoder.layer.0.output.dropout",
        "bert.encoder.layer.1.attention.output.dropout", "bert.encoder.layer.1.output.dropout",
        "dropout",
    ]


def test_erasing_a_node_with_users_raises_naming_node_and_users(setup):
    _, _, g = setup
    node = dropout_nodes(g)[0]
    users = [u.name for u in node.users]
    with pytest.raises(RuntimeError) as exc:
        g.fx.erase_node(node)
    msg = str(exc.value)
    assert f"Node {node.name}" in msg and f"{len(users)} users" in msg
    assert all(u in msg for u in users)
    assert count_dropout(g)[1]["dropout_nodes"] == 6  # the failed erase left the graph intact


def test_remove_dropout_keeps_eval_outputs(setup):
    model, inputs, g = setup
    with torch.no_grad():
        assert not torch.equal(g.run().logits, g.run().logits)  # dropout active in the captured graph
    _, info = remove_dropout(g)
    assert len(info["removed"]) == 6 and info["attention_dropout_zeroed"] == 2
    _, after = count_dropout(g)
    assert after["dropout_nodes"] == 0 and after["attention_dropout"] == 0
    with torch.no_grad():
        a, b = g.run().logits, g.run().logits
    assert torch.equal(a, b)
    assert torch.equal(a, _eager_eval(model, inputs))
    assert "remove_dropout" in g.history[-1]


def test_set_dropout_mode_roundtrip(setup):
    model, inputs, g = setup
    set_dropout_mode(g, {"train": False})
    with torch.no_grad():
        assert torch.equal(g.run().logits, _eager_eval(model, inputs))
    assert count_dropout(g)[1]["attention_dropout"] == 0
    set_dropout_mode(g, {"train": True})
    assert count_dropout(g)[1]["attention_dropout"] == 2
    with pytest.raises(ValueError, match="train"):
        set_dropout_mode(g, {})


class NativeDrop(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x):
        out, mask = torch.ops.aten.native_dropout(self.lin(x), 0.5, True)
        return out * mask


def test_native_dropout_with_mask_user_is_removed():
    model = NativeDrop()
    x = torch.randn(3, 4)
    g = capture(model, {"x": x})
    assert count_dropout(g)[1]["dropout_nodes"] == 1
    remove_dropout(g)
    assert count_dropout(g)[1]["dropout_nodes"] == 0
    with torch.no_grad():
        assert torch.equal(g.run(), model.lin(x))
