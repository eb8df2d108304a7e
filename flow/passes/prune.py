"""Prune any nn.Module: weight masks that survive fine-tuning, and run-time activation pruning.

Weights: each targeted layer's ``weight`` gets a ``WeightMask`` parametrization
(torch.nn.utils.parametrize) holding a boolean ``mask`` buffer. ``layer.weight`` is then always
``where(mask, original, 0)``: the optimizer updates the original, and every forward (and every
reader of ``layer.weight``, such as ``QuantLinear.weight_codes``) sees pruned entries at exactly
zero, whatever the training does. ``make_permanent`` folds the masks into plain weights (needed
before ``flow.compile``, whose capture and lowering read plain Linear layers).

- ``method="random"``: a seeded uniformly random set of weights; ``"l1"``: the smallest |w|.
- ``scope="local"``: each layer loses ``round(sparsity * numel)`` weights; ``"global"``: all
  targeted layers together lose ``round(sparsity * total)``, the smallest over all of them
  (one threshold), so layers end up with different sparsities.
- Pruning a layer again ranks its already-pruned weights first, so masks only grow.

Activations (``activations=True``): a forward pre-hook zeroes the smallest-magnitude entries of
the layer's input, per sample (each index of dim 0, over all its other elements; a 1-D input is
one sample), keeping the top ``1 - sparsity`` fraction: ``round(sparsity * n)`` zeroed of ``n``.
It is computed at run time on every call; ``make_permanent`` keeps it (``remove_activation_pruning``
drops it).

Order with quantization: FormatLinear fake-quantizes ``layer.weight``, the masked weight, and
fixed point maps 0 to code 0, so prune-after-quantize keeps zeros zero. ``quantize_module``
moves masks to the new layer, so prune-before-quantize does too. The activation hook runs before
the input's fake-quantization, so pruned inputs stay zero as well.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from flow.passes.quantize import base_type_name, check_name_key, covers

METHODS = ("random", "l1")
SCOPES = ("local", "global")


class WeightMask(nn.Module):
    """A parametrization that zeroes the weight where the boolean ``mask`` buffer is False."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.to(torch.bool))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return torch.where(self.mask, weight, torch.zeros((), dtype=weight.dtype, device=weight.device))


class ActivationPruner:
    """Forward pre-hook: zero the ``round(sparsity * n)`` smallest-|x| entries of each sample."""

    def __init__(self, sparsity: float) -> None:
        self.sparsity = sparsity

    def __call__(self, module: nn.Module, args: tuple) -> tuple | None:
        x = args[0]
        flat = x.reshape(x.shape[0] if x.dim() > 1 else 1, -1)
        drop = round(self.sparsity * flat.shape[1])
        if drop == 0:
            return None
        smallest = flat.abs().topk(drop, dim=1, largest=False).indices
        keep = torch.ones_like(flat, dtype=torch.bool).scatter_(1, smallest, False)
        pruned = torch.where(keep, flat, torch.zeros((), dtype=x.dtype, device=x.device))
        return (pruned.reshape(x.shape), *args[1:])


def weight_mask(module: nn.Module) -> WeightMask | None:
    """The WeightMask on ``module.weight``, if pruned."""
    if parametrize.is_parametrized(module, "weight"):
        for p in module.parametrizations["weight"]:
            if isinstance(p, WeightMask):
                return p
    return None


def activation_pruner(module: nn.Module) -> ActivationPruner | None:
    return next((h for h in module._forward_pre_hooks.values() if isinstance(h, ActivationPruner)), None)


# ---- the report ----
@dataclass(frozen=True)
class PrunedLayer:
    """One layer's counts: masked-out entries and zeros in the weight the forward uses."""

    path: str
    type: str
    numel: int
    masked: int  # entries the mask removes
    zeros: int  # entries of layer.weight equal to zero (masked ones plus any exact zeros)
    activation_sparsity: float | None = None

    @property
    def sparsity(self) -> float:
        return self.masked / self.numel

    @property
    def weight_sparsity(self) -> float:
        return self.zeros / self.numel


@dataclass
class PruneReport:
    """Per-layer and overall sparsity, counted from the masks and from the weights themselves."""

    layers: list[PrunedLayer] = field(default_factory=list)
    target: float | None = None
    method: str | None = None
    scope: str | None = None

    @property
    def numel(self) -> int:
        return sum(r.numel for r in self.layers)

    @property
    def overall(self) -> float:
        """Masked fraction over all reported weights."""
        return sum(r.masked for r in self.layers) / max(self.numel, 1)

    @property
    def overall_weights(self) -> float:
        """Zero fraction of the weights the forward uses, over all reported weights."""
        return sum(r.zeros for r in self.layers) / max(self.numel, 1)

    def layer(self, path: str) -> PrunedLayer:
        return next(r for r in self.layers if r.path == path)

    def table(self) -> str:
        head = ("layer", "type", "weights", "masked", "mask sparsity", "zero weights", "act. sparsity")
        rows = [(r.path, r.type, r.numel, r.masked, f"{r.sparsity:.4f}", f"{r.weight_sparsity:.4f}",
                 "-" if r.activation_sparsity is None else f"{r.activation_sparsity:.4f}") for r in self.layers]
        rows.append(("overall", "", self.numel, sum(r.masked for r in self.layers), f"{self.overall:.4f}",
                     f"{self.overall_weights:.4f}", ""))
        widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.insert(len(lines) - 1, lines[1])
        if self.method is not None:
            lines.append(f"target {self.target} ({self.method}, {self.scope})")
        return "\n".join(lines)


def sparsity_report(model: nn.Module, paths: Sequence[str] | None = None) -> PruneReport:
    """Count the current masks and zero weights of the pruned layers (or of the modules at ``paths``)."""
    named = dict(model.named_modules())
    chosen = list(paths) if paths is not None else [p for p, m in named.items()
                                                    if weight_mask(m) is not None or activation_pruner(m) is not None]
    report = PruneReport()
    for path in chosen:
        module = named[path]
        mask, pruner = weight_mask(module), activation_pruner(module)
        with torch.no_grad():
            weight = module.weight
            masked = int((~mask.mask).sum()) if mask is not None else 0
            report.layers.append(PrunedLayer(path, base_type_name(module), weight.numel(), masked,
                                             int((weight == 0).sum()), None if pruner is None else pruner.sparsity))
    return report


# ---- pruning ----
def _targets(model: nn.Module, targets: Sequence[type | str]) -> list[tuple[str, nn.Module]]:
    types = tuple(t for t in targets if isinstance(t, type))
    names = [t for t in targets if isinstance(t, str)]
    if len(types) + len(names) != len(targets) or not targets:
        raise ValueError(f"targets must be module classes or name keys (paths, parent paths, fnmatch patterns), "
                         f"got {targets!r}")
    modules = list(model.named_modules())  # each shared module once
    linear_paths = [p for p, m in modules if isinstance(m, nn.Linear)]
    all_paths = [p for p, _ in model.named_modules(remove_duplicate=False)]
    for key in names:
        try:
            check_name_key(key, linear_paths, all_paths, "prune target")
        except ValueError as error:
            raise ValueError(str(error)) from None
    chosen = [(p, m) for p, m in modules
              if (types and isinstance(m, types)) or (isinstance(m, nn.Linear) and any(covers(k, p) for k in names))]
    for path, module in chosen:
        if not isinstance(getattr(module, "weight", None), torch.Tensor):
            raise ValueError(f"prune target {path!r} ({type(module).__name__}) has no weight tensor; "
                             "target layers with a weight")
    if not chosen:
        raise ValueError(f"no module of {type(model).__name__} matches targets {targets!r}")
    return chosen


def _scores(weights: list[torch.Tensor], method: str, generator: torch.Generator) -> list[torch.Tensor]:
    """Per-entry scores, lowest pruned first; already-masked entries (zero weight under a mask) score -1."""
    if method == "l1":
        return [w.detach().abs().flatten().cpu().to(torch.float64) for w in weights]
    return [torch.rand(w.numel(), generator=generator, dtype=torch.float64) for w in weights]


def _lowest(scores: torch.Tensor, count: int) -> torch.Tensor:
    """A boolean keep-mask dropping exactly ``count`` lowest scores (ties: the first in order)."""
    keep = torch.ones(scores.numel(), dtype=torch.bool)
    keep[torch.argsort(scores, stable=True)[:count]] = False
    return keep


def prune_module(model: nn.Module, sparsity: float, method: str = "random", scope: str = "local", *,
                 activations: bool = False, targets: Sequence[type | str] = (nn.Linear,),
                 seed: int = 0) -> PruneReport:
    """Mask the weights of the targeted layers (and, with ``activations``, prune their inputs at
    run time) to ``sparsity``, in place; see the module docstring. ``targets`` mixes module
    classes (any module with a weight) and name keys selecting nn.Linear layers: a module path
    (the layer or a parent) or an fnmatch pattern, as in ``quantize_module``."""
    if not isinstance(sparsity, int | float) or not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be a fraction in [0, 1) (1 would remove every weight), got {sparsity!r}")
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not known; use one of {', '.join(METHODS)}")
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r} is not known; use one of {', '.join(SCOPES)}")
    chosen = _targets(model, targets)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        weights = [m.weight for _, m in chosen]
        scores = _scores(weights, method, generator)
        for (_, module), score in zip(chosen, scores):
            old = weight_mask(module)
            if old is not None:
                score[~old.mask.flatten().cpu()] = -1.0
        if scope == "local":
            keeps = [_lowest(s, round(sparsity * s.numel())) for s in scores]
        else:
            total = torch.cat(scores)
            flat = _lowest(total, round(sparsity * total.numel()))
            keeps = list(flat.split([s.numel() for s in scores]))
        for (_, module), weight, keep in zip(chosen, weights, keeps):
            mask = keep.reshape(weight.shape).to(weight.device)
            old = weight_mask(module)
            if old is not None:
                old.mask.copy_(mask)
            else:
                parametrize.register_parametrization(module, "weight", WeightMask(mask))
    for _, module in chosen:
        pruner = activation_pruner(module)
        if activations and pruner is None:
            module.register_forward_pre_hook(ActivationPruner(sparsity))
        elif activations:
            pruner.sparsity = sparsity
    report = sparsity_report(model, [p for p, _ in chosen])
    report.target, report.method, report.scope = sparsity, method, scope
    return report


def remove_activation_pruning(model: nn.Module) -> int:
    """Drop every activation-pruning hook; returns how many were removed."""
    removed = 0
    for module in model.modules():
        for key in [k for k, h in module._forward_pre_hooks.items() if isinstance(h, ActivationPruner)]:
            del module._forward_pre_hooks[key]
            removed += 1
    return removed


def make_permanent(model: nn.Module) -> int:
    """Fold every weight mask into its weight (pruned entries become stored zeros) and remove the
    parametrization, so the layer is a plain module again; returns how many masks were folded.
    Activation pruning hooks stay (they act at run time; see ``remove_activation_pruning``)."""
    folded = 0
    for path, module in list(model.named_modules()):
        if weight_mask(module) is None:
            continue
        if len(module.parametrizations["weight"]) > 1:
            raise ValueError(f"{path!r}.weight has other parametrizations besides its prune mask; remove them "
                             "(torch.nn.utils.parametrize.remove_parametrizations) before make_permanent")
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        folded += 1
    return folded
