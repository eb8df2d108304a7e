"""LoRA (Hu et al. 2021) and its fusion.

Each adapted Linear computes `base(x) + (alpha / rank) * B(A(dropout(x)))` with the base weight
and bias frozen, A Kaiming-uniform, B zero (so the adapted model starts equal to the base),
and dropout only on the LoRA branch. Fusion folds `W + (alpha / rank) * B @ A` back into a plain
Linear. Shared modules are wrapped once; parameter reports count each tensor once.
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any

import torch
from torch import nn

from flow.graph.capture import Graph


class LoRALinear(nn.Module):
    """A frozen `nn.Linear` plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank {rank} must be at least 1")
        if rank > min(base.in_features, base.out_features):
            raise ValueError(f"LoRA rank {rank} exceeds min(in, out) = {min(base.in_features, base.out_features)}; lower it")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"LoRA dropout {dropout} must lie in [0, 1)")
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=w.dtype, device=w.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.rank, self.alpha = rank, float(alpha)
        self.scaling = self.alpha / rank
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta_weight(self) -> torch.Tensor:
        """The update the branch adds to the weight: scaling * B @ A."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = nn.functional.linear(nn.functional.linear(self.dropout(x), self.lora_A), self.lora_B)
        return self.base(x) + self.scaling * update

    def fused(self) -> nn.Linear:
        """A plain Linear with the update folded in (bias unchanged); frozen like the base."""
        base = self.base
        out = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                        device=base.weight.device, dtype=base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(base.weight + self.delta_weight())
            if base.bias is not None:
                out.bias.copy_(base.bias)
        for p in out.parameters():
            p.requires_grad_(False)
        return out

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}, scaling={self.scaling:g}"


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) or name == p or name.endswith("." + p) for p in patterns)


def _replace(model: nn.Module, swap: dict[int, nn.Module]) -> int:
    """Point every parent attribute holding a module in `swap` (by id) at its replacement."""
    count = 0
    wrappers = {id(m) for m in swap.values()}
    for parent in list(model.modules()):
        if id(parent) in wrappers:  # a new wrapper holds the module it replaces: leave that link
            continue
        for child_name, child in list(parent._modules.items()):  # named_children() hides repeats
            if id(child) in swap:
                setattr(parent, child_name, swap[id(child)])
                count += 1
    return count


def apply_lora(model: nn.Module, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0,
               targets: tuple[str, ...] = ("*",), trainable: tuple[str, ...] = ("classifier",)) -> dict[str, Any]:
    """Wrap the Linear layers whose names match `targets` (fnmatch) in `LoRALinear`, in place.

    Everything is frozen except the LoRA factors and the modules named in `trainable` (the task head).
    """
    trainable_names = {n for n, _ in model.named_modules(remove_duplicate=False) if n and _matches(n, trainable)}
    swap: dict[int, nn.Module] = {}
    adapted: list[str] = []
    for name, module in model.named_modules(remove_duplicate=False):
        if (not isinstance(module, nn.Linear) or name in trainable_names
                or any(name.startswith(t + ".") for t in trainable_names) or not _matches(name, targets)):
            continue
        adapted.append(name)
        if id(module) not in swap:  # a module shared by several parents is wrapped once
            swap[id(module)] = LoRALinear(module, rank, alpha, dropout)
    if not swap:
        raise ValueError(f"no nn.Linear matches targets {targets} (outside {sorted(trainable_names)}); "
                         "check the module names with model.named_modules()")
    for p in model.parameters():
        p.requires_grad_(False)
    _replace(model, swap)
    for wrapper in swap.values():
        wrapper.lora_A.requires_grad_(True)
        wrapper.lora_B.requires_grad_(True)
    for name, module in model.named_modules():
        if name in trainable_names:
            for p in module.parameters():
                p.requires_grad_(True)
    return {"adapted": adapted, "wrappers": len(swap), "rank": rank, "alpha": alpha, "dropout": dropout,
            "trainable_modules": sorted(trainable_names), **parameter_report(model)}


def fuse_lora(model: nn.Module) -> dict[str, Any]:
    """Replace every `LoRALinear` by its fused Linear, in place; outputs are unchanged (eval mode)."""
    swap = {id(m): m.fused() for m in model.modules() if isinstance(m, LoRALinear)}
    if not swap:
        raise ValueError("the model has no LoRA layers to fuse; apply_lora first")
    _replace(model, swap)
    return {"fused": len(swap), **parameter_report(model)}


def parameter_report(model: nn.Module) -> dict[str, Any]:
    """Total / trainable / frozen parameter elements, each distinct tensor counted once (tied or shared)."""
    unique: dict[int, nn.Parameter] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        unique.setdefault(id(p), p)
    total = sum(p.numel() for p in unique.values())
    trainable = sum(p.numel() for p in unique.values() if p.requires_grad)
    return {"parameters_total": total, "parameters_trainable": trainable, "parameters_frozen": total - trainable,
            "trainable_fraction": trainable / total if total else 0.0}


def lora_pass(graph: Graph, args: dict[str, Any] | None = None) -> tuple[Graph, dict[str, Any]]:
    """Graph pass: LoRA on the graph's model (args as `apply_lora`), then a fresh capture."""
    args = dict(args or {})
    if graph.model is None:
        raise ValueError("lora_pass needs the source model; capture the graph with flow.graph.capture(model, ...)")
    if graph.edited:
        graph.recapture("lora_pass")  # raises the one-line error about node-level edits
    info = apply_lora(graph.model, **args)
    return graph.recapture(f"lora_pass({args})"), info


def fuse_lora_pass(graph: Graph, args: dict[str, Any] | None = None) -> tuple[Graph, dict[str, Any]]:
    """Graph pass: fuse the LoRA layers of the graph's model, then a fresh capture."""
    if graph.model is None:
        raise ValueError("fuse_lora_pass needs the source model; capture the graph with flow.graph.capture(model, ...)")
    if graph.edited:
        graph.recapture("fuse_lora_pass")
    info = fuse_lora(graph.model)
    return graph.recapture("fuse_lora_pass"), info
