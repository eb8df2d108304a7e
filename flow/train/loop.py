"""The training and evaluation loop: seeded, AdamW with linear warmup/decay, gradient clipping,
tqdm progress with throughput (samples/s), optional checkpoint at the end.

Runs on the device :mod:`flow.train.device` names (the CPU unless a lab asked for ``--device cuda``):
the model moves there at the start of each call, batches as they come. Kept lean on purpose (no per-step host syncs beyond the progress bar) so it is at least as fast
as Hugging Face's Trainer on the same model, data, batch and sequence length.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from flow.train.checkpoint import save_checkpoint
from flow.train.device import current_device, to_device


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainConfig:
    """Optimiser and schedule settings (defaults: the reference, AdamW lr 5e-5, linear decay, 1 epoch)."""

    epochs: float = 1.0
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    max_grad_norm: float | None = 1.0
    max_steps: int | None = None
    seed: int = 0
    log_every: int = 20

    def __post_init__(self) -> None:
        if self.epochs <= 0 and not self.max_steps:
            raise ValueError(f"epochs {self.epochs} must be positive (or set max_steps)")
        if self.lr <= 0:
            raise ValueError(f"lr {self.lr} must be positive")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio {self.warmup_ratio} must lie in [0, 1)")


@dataclass
class TrainResult:
    """What a training run did: steps, samples, time, throughput and the loss curve (every log_every steps)."""

    steps: int
    samples: int
    seconds: float
    samples_per_s: float
    final_loss: float
    losses: list[tuple[int, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvalResult:
    """Accuracy and mean loss over a split, with time and throughput."""

    accuracy: float
    loss: float
    samples: int
    seconds: float
    samples_per_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, total_steps: int) -> tuple[torch.optim.Optimizer, LambdaLR]:
    """AdamW over trainable parameters (no decay on biases and norms) and linear warmup then decay to 0."""
    decay, no_decay, seen = [], [], set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters; unfreeze some (requires_grad=True) before training")
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    try:  # the fused kernel (CPU and CUDA) is what HF Trainer uses by default too
        opt = torch.optim.AdamW(groups, lr=cfg.lr, fused=True)
    except (RuntimeError, TypeError):
        opt = torch.optim.AdamW(groups, lr=cfg.lr)
    warmup = int(cfg.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return opt, LambdaLR(opt, factor)


def _forward_loss(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    out = model(**batch)
    logits = out.logits if hasattr(out, "logits") else out[0] if isinstance(out, tuple) else out
    loss = getattr(out, "loss", None)
    if loss is None:
        loss = torch.nn.functional.cross_entropy(logits, batch["labels"])
    return loss, logits


def train(
    model: torch.nn.Module,
    loader: Iterable[Mapping[str, torch.Tensor]],
    cfg: TrainConfig | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    on_step: Callable[[int], None] | None = None,
    on_epoch: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train `model` on `loader` (batches of keyword inputs with `labels`); returns what it did.

    `on_step(step)` runs after every optimiser step, `on_epoch(epoch)` after every full pass
    (e.g. a validation run; it may switch the model to eval, train mode is restored after it).
    """
    cfg = cfg or TrainConfig()
    set_seed(cfg.seed)
    per_epoch = len(loader)  # type: ignore[arg-type]
    if per_epoch == 0:
        raise ValueError("the training loader is empty; check the dataset and batch size")
    total = cfg.max_steps if cfg.max_steps else math.ceil(cfg.epochs * per_epoch)
    opt, sched = make_optimizer(model, cfg, total)
    model.to(current_device())
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    step, samples, losses = 0, 0, []
    running = torch.zeros((), device=current_device())
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc="train", unit="step", disable=not progress, dynamic_ncols=True)
    epoch = 0
    while step < total:
        batches = 0
        for batch in loader:
            batches += 1
            batch = to_device(batch)
            loss, _ = _forward_loss(model, batch)
            loss.backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            samples += len(batch["labels"])
            running += loss.detach()
            if on_step is not None:
                on_step(step)
            if step % cfg.log_every == 0 or step == total:
                n = step % cfg.log_every or cfg.log_every
                mean = float(running) / n
                running.zero_()
                losses.append((step, mean))
                rate = samples / (time.perf_counter() - t0)
                bar.set_postfix(loss=f"{mean:.4f}", lr=f"{sched.get_last_lr()[0]:.2e}", sps=f"{rate:.0f}")
            bar.update(1)
            if step >= total:
                break
        if batches == per_epoch:  # a full pass over the data ended
            epoch += 1
            if on_epoch is not None:
                on_epoch(epoch)
                model.train()
    bar.close()
    seconds = time.perf_counter() - t0
    result = TrainResult(step, samples, seconds, samples / seconds, losses[-1][1] if losses else float("nan"), losses)
    if progress:
        print(f"train: {step} steps, {samples} samples in {seconds:.1f} s = {result.samples_per_s:.1f} samples/s")
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, opt, sched, step=step, config=asdict(cfg), train=result.as_dict())
    return result


def evaluate(model: torch.nn.Module, loader: Iterable[Mapping[str, torch.Tensor]], progress: bool = True,
             desc: str = "eval") -> EvalResult:
    """Accuracy and mean cross-entropy of `model` over `loader`, in eval mode (restores the mode after).
    The model moves to the device outside inference mode: moved there, its parameters would become
    inference tensors that a later training step cannot use."""
    model.to(current_device())
    return _evaluate(model, loader, progress, desc)


@torch.inference_mode()
def _evaluate(model: torch.nn.Module, loader: Iterable[Mapping[str, torch.Tensor]], progress: bool,
              desc: str) -> EvalResult:
    was = model.training
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    t0 = time.perf_counter()
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress, dynamic_ncols=True):
        batch = to_device(batch)
        labels = batch["labels"]
        loss, logits = _forward_loss(model, batch)
        correct += int((logits.argmax(-1) == labels).sum())
        loss_sum += float(loss) * len(labels)
        total += len(labels)
    seconds = time.perf_counter() - t0
    model.train(was)
    if total == 0:
        raise ValueError("the evaluation loader is empty; check the dataset")
    res = EvalResult(correct / total, loss_sum / total, total, seconds, total / seconds)
    if progress:
        print(f"{desc}: accuracy {res.accuracy:.4f} on {total} samples in {seconds:.1f} s = {res.samples_per_s:.0f} samples/s")
    return res
