"""The training loop: learning, seeding, the linear schedule, checkpoints, evaluation and errors."""

import pytest
import torch

from flow.data.loader import TokenizedDataset, make_loader
from flow.train import TrainConfig, evaluate, load_checkpoint, save_checkpoint, train
from flow.train.loop import make_optimizer
from tests.bert_helpers import tiny_bert


def toy_data(n=256, seed=0):
    """Label 1 iff token 7 occurs: learnable by a tiny BERT in a few dozen steps."""
    g = torch.Generator().manual_seed(seed)
    ids, labels = [], []
    for i in range(n):
        length = int(torch.randint(6, 16, (1,), generator=g))
        seq = torch.randint(10, 100, (length,), generator=g)
        if i % 2:
            seq[int(torch.randint(1, length - 1, (1,), generator=g))] = 7
        ids.append([2, *seq.tolist(), 3])
        labels.append(i % 2)
    return TokenizedDataset(ids, labels)


def test_training_learns_and_reports_throughput(capsys):
    torch.manual_seed(0)
    model = tiny_bert()
    data = toy_data()
    before = evaluate(model, make_loader(data, 64), progress=False)
    res = train(model, make_loader(data, 16, shuffle=True), TrainConfig(epochs=6, lr=2e-3, warmup_ratio=0.1, log_every=8))
    after = evaluate(model, make_loader(data, 64, sort_by_length=True))
    assert res.steps == 6 * 16 and res.samples == 6 * 256 and res.samples_per_s > 0
    assert res.losses[-1][1] < res.losses[0][1]
    assert after.accuracy > max(0.9, before.accuracy) and after.samples == 256
    out = capsys.readouterr().out
    assert "samples/s" in out and "accuracy" in out


def test_same_seed_same_weights():
    def run():
        model = tiny_bert(seed=1)
        train(model, make_loader(toy_data(64), 16, shuffle=True, seed=3), TrainConfig(max_steps=5, lr=1e-3, seed=5),
              progress=False)
        return torch.cat([p.flatten() for p in model.parameters()])

    assert torch.equal(run(), run())


def test_linear_warmup_then_decay_to_zero():
    model = tiny_bert()
    opt, sched = make_optimizer(model, TrainConfig(lr=1.0, warmup_ratio=0.2), total_steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert lrs[2:] == pytest.approx([1.0 - k / 8 for k in range(8)])
    assert sched.get_last_lr()[0] == 0.0
    decays = [g["weight_decay"] for g in opt.param_groups]
    assert decays == [0.01, 0.0]  # no decay on biases and LayerNorm


def test_checkpoint_roundtrip(tmp_path):
    model = tiny_bert(seed=2)
    path = tmp_path / "ck" / "m.pt"
    res = train(model, make_loader(toy_data(64), 16, shuffle=True), TrainConfig(max_steps=3, lr=1e-3), progress=False,
                checkpoint=path)
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    fresh = tiny_bert(seed=9)
    opt, sched = make_optimizer(fresh, TrainConfig(), 3)
    meta = load_checkpoint(path, fresh, opt, sched)
    assert meta["step"] == res.steps == 3
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert sched.last_epoch == 3 and len(opt.state) > 0
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt", fresh)
    save_checkpoint(tmp_path / "lin.pt", torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="does not fit the model"):
        load_checkpoint(tmp_path / "lin.pt", fresh)


def test_evaluate_restores_mode_and_errors():
    model = tiny_bert()
    model.train()
    evaluate(model, make_loader(toy_data(32), 8), progress=False)
    assert model.training
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=0)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train(model, make_loader(toy_data(32), 8), TrainConfig(max_steps=1), progress=False)


def test_on_epoch_callback_runs_each_epoch():
    model = tiny_bert()
    seen = []
    train(model, make_loader(toy_data(32), 8, shuffle=True), TrainConfig(epochs=3), progress=False,
          on_epoch=lambda e: (seen.append(e), model.eval()))
    assert seen == [1, 2, 3] and model.training
