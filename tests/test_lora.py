"""LoRA: frozen base, zero-init B, alpha/rank scale, dropout, bias, fusion, parameter counting."""

import pytest
import torch
from torch import nn

from flow.graph import capture
from flow.passes.dropout import remove_dropout
from flow.passes.lora import (
    LoRALinear,
    apply_lora,
    fuse_lora,
    fuse_lora_pass,
    lora_pass,
    parameter_report,
)
from tests.bert_helpers import padded_batch, tiny_bert


def test_zero_init_b_means_identical_output_and_frozen_base():
    torch.manual_seed(0)
    base = nn.Linear(6, 4)
    x = torch.randn(5, 6)
    ref = base(x)
    lora = LoRALinear(base, rank=2, alpha=4)
    assert torch.equal(lora.lora_B, torch.zeros(4, 2)) and lora.lora_A.abs().sum() > 0
    assert torch.equal(lora(x), ref)
    assert not base.weight.requires_grad and not base.bias.requires_grad
    assert lora.lora_A.requires_grad and lora.lora_B.requires_grad


def test_scale_is_alpha_over_rank_and_bias_is_kept():
    torch.manual_seed(1)
    base = nn.Linear(6, 4)
    lora = LoRALinear(base, rank=3, alpha=12)
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.randn(5, 6)
    expected = x @ base.weight.T + base.bias + (12 / 3) * (x @ lora.lora_A.T @ lora.lora_B.T)
    assert lora.scaling == 4.0
    assert torch.allclose(lora(x), expected, atol=1e-5)


def test_dropout_applies_to_the_lora_branch_only_and_only_in_training():
    torch.manual_seed(2)
    base = nn.Linear(16, 8)
    lora = LoRALinear(base, rank=4, alpha=4, dropout=0.5)
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.randn(32, 16)
    lora.train()
    a, b = lora(x), lora(x)
    assert not torch.equal(a, b)  # dropout active in training
    torch.manual_seed(7)
    out = lora(x)
    torch.manual_seed(7)
    dropped = nn.functional.dropout(x, 0.5, True)
    assert torch.allclose(out, base(x) + (dropped @ lora.lora_A.T @ lora.lora_B.T), atol=1e-5)  # base sees clean x
    lora.eval()
    assert torch.equal(lora(x), lora(x))
    assert torch.allclose(lora(x), base(x) + x @ lora.lora_A.T @ lora.lora_B.T, atol=1e-5)
    assert isinstance(LoRALinear(nn.Linear(4, 4), 2, 2, dropout=0.0).dropout, nn.Identity)


def test_training_changes_only_lora_factors_and_head():
    model = tiny_bert()
    info = apply_lora(model, rank=4, alpha=8)
    assert info["wrappers"] == 13  # 6 per layer x 2 + pooler; the classifier stays a trainable Linear
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(("lora_" in n) or n.startswith("classifier.") for n in names)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = padded_batch()
    for _ in range(2):
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad()
    for n, p in model.named_parameters():
        changed = not torch.equal(before[n], p)
        assert changed == (n in names), n


def test_fused_output_equals_unfused_and_counts():
    model = tiny_bert()
    total = parameter_report(model)["parameters_total"]
    apply_lora(model, rank=4, alpha=8, dropout=0.1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.normal_(std=0.1)
    model.eval()
    batch = padded_batch()
    with torch.no_grad():
        unfused = model(**batch).logits
        info = fuse_lora(model)
        fused = model(**batch).logits
    assert info["fused"] == 13 and not any(isinstance(m, LoRALinear) for m in model.modules())
    assert torch.allclose(unfused, fused, atol=1e-5)
    assert info["parameters_total"] == total  # fusion adds nothing
    assert info["parameters_trainable"] == 32 * 2 + 2  # only the classifier head stays trainable
    with pytest.raises(ValueError, match="no LoRA layers"):
        fuse_lora(model)


class Shared(nn.Module):
    """One Linear used twice and a weight tied between two Linears."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = self.a  # the same module under two names
        self.c = nn.Linear(8, 8, bias=False)
        self.d = nn.Linear(8, 8, bias=False)
        self.d.weight = self.c.weight  # tied parameter
        self.classifier = nn.Linear(8, 2)

    def forward(self, x):
        return self.classifier(self.d(self.c(self.b(self.a(x)))))


def test_shared_and_tied_parameters_counted_once():
    model = Shared()
    assert parameter_report(model)["parameters_total"] == 72 + 64 + 18
    info = apply_lora(model, rank=2, alpha=2)
    assert model.a is model.b and isinstance(model.a, LoRALinear)  # wrapped once, still shared
    assert info["wrappers"] == 3
    assert info["parameters_trainable"] == 3 * (2 * 8 + 8 * 2) + 18
    assert info["parameters_total"] == 72 + 64 + 18 + 3 * 32
    assert info["parameters_frozen"] == 72 + 64


def test_bad_lora_arguments():
    with pytest.raises(ValueError, match="rank 0"):
        LoRALinear(nn.Linear(4, 4), 0, 1)
    with pytest.raises(ValueError, match="exceeds"):
        LoRALinear(nn.Linear(4, 2), 3, 1)
    with pytest.raises(ValueError, match="no nn.Linear matches"):
        apply_lora(tiny_bert(), targets=("*.conv",))


def test_graph_passes_keep_outputs():
    model = tiny_bert()
    batch = padded_batch()
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    g = capture(model, inputs, mode="eval")
    with torch.no_grad():
        ref = g.run().logits
        g2, info = lora_pass(g, {"rank": 4, "alpha": 8, "targets": ("*.query", "*.value")})
        assert info["wrappers"] == 4
        assert any("lora_A" in str(n.target) for n in g2.nodes if n.op == "get_attr")
        assert torch.equal(g2.run().logits, ref)  # B = 0: same function
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.normal_(std=0.1)
        g2 = g2.recapture("after training")
        adapted = g2.run().logits
        g3, _ = fuse_lora_pass(g2)
        assert not any("lora_A" in str(n.target) for n in g3.nodes if n.op == "get_attr")
        assert torch.allclose(g3.run().logits, adapted, atol=1e-5)
    edited = g3.copy()
    remove_dropout(edited)
    with pytest.raises(ValueError, match="node-level edits"):
        lora_pass(edited, {"rank": 2})
