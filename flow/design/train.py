"""Train the design's float model (cached by a hash of the sections it depends on) and QAT."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from flow.config.schema import DesignConfig
from flow.data.tabular import Split
from flow.models.loading import entry_point_fingerprint, from_entry_point, load_checkpoint
from flow.models.mlp import build_mlp
from flow.paths import cache_dir


def build_model(config: DesignConfig, data: Split) -> nn.Module:
    """The float model the config describes: a user's entry point, or flow's MLP sized by the data."""
    m = config.model
    if m.entry_point:
        return from_entry_point(m.entry_point)
    return build_mlp(data.in_features, m.hidden, data.classes, m.activation, m.leaky_shift, m.batchnorm)


def fit(model: nn.Module, data: Split, epochs: int, lr: float, batch_size: int, seed: int,
        weight_decay: float = 0.0, desc: str = "train") -> None:
    """Adam on cross-entropy, shuffled mini-batches, seeded; a progress bar per run.

    Runs on one thread: for a model this small, thread start-up costs more than it saves.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _fit(model, data, epochs, lr, batch_size, seed, weight_decay, desc)
    finally:
        torch.set_num_threads(threads)


def _fit(model: nn.Module, data: Split, epochs: int, lr: float, batch_size: int, seed: int,
         weight_decay: float, desc: str) -> None:
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in tqdm(range(epochs), desc=desc, unit="epoch", leave=False):
        order = torch.randperm(len(data.y_train), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            loss_fn(model(data.x_train[batch]), data.y_train[batch]).backward()
            optimizer.step()
    model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in eval mode (ties resolve to the first class, as the hardware's argmax)."""
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


def trained_float_model(config: DesignConfig, data: Split, cache: Path | None = None,
                        log=print) -> nn.Module:
    """The model with a user's checkpoint loaded, or trained once per (model, dataset, training)
    config, later calls loading the cached weights."""
    m, t = config.model, config.training
    torch.manual_seed(t.seed)
    model = build_model(config, data)
    if m.checkpoint:
        load_checkpoint(model, m.checkpoint)
        log(f"float model: weights from {m.checkpoint} (not trained)")
        return model
    key = config.training_hash()
    if m.entry_point:
        key += "-" + entry_point_fingerprint(m.entry_point)
    path = (cache or cache_dir() / "designs") / f"{m.kind}-{key}.pt"
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        model.eval()
        log(f"float model: loaded cached checkpoint {path}")
        return model
    fit(model, data, t.epochs, t.lr, t.batch_size, t.seed, t.weight_decay, "float training")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # concurrent trainers never share a file
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    log(f"float model: trained {t.epochs} epochs, cached at {path}")
    return model
