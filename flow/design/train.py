"""Train the design's float model (cached by a hash of the sections it depends on) and QAT."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from flow.data.digits import DigitsSplit
from flow.design.config import TRAINING_SECTIONS, config_hash
from flow.models.mlp import build_mlp
from flow.paths import cache_dir


def build_model(config: dict[str, Any]) -> nn.Sequential:
    """The float model the config describes (digits: 64 inputs, 10 classes)."""
    m = config["model"]
    return build_mlp(64, m["hidden"], 10, m["activation"], m["leaky_shift"], m["batchnorm"])


def fit(model: nn.Module, data: DigitsSplit, epochs: int, lr: float, batch_size: int, seed: int,
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


def _fit(model: nn.Module, data: DigitsSplit, epochs: int, lr: float, batch_size: int, seed: int,
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


def trained_float_model(config: dict[str, Any], data: DigitsSplit, cache: Path | None = None,
                        log=print) -> nn.Sequential:
    """Train once per (model, dataset, training) config; later calls load the checkpoint."""
    key = config_hash(config, TRAINING_SECTIONS)
    path = (cache or cache_dir() / "designs") / f"{config['model']['kind']}-{key}.pt"
    torch.manual_seed(config["training"]["seed"])
    model = build_model(config)
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        model.eval()
        log(f"float model: loaded cached checkpoint {path}")
        return model
    t = config["training"]
    fit(model, data, t["epochs"], t["lr"], t["batch_size"], t["seed"], t["weight_decay"], "float training")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # concurrent trainers never share a file
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    log(f"float model: trained {t['epochs']} epochs, cached at {path}")
    return model
