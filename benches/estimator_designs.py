"""Seeded multi-layer designs for the estimator's sweep (benches/calibrate_estimator.py).

Each design is 2 to 4 Linears (8 to 32 outputs each; the layer after a concatenation reads both
operands, up to 64 inputs) with ReLU or leaky ReLU between them, formats
drawn per layer (so casts sit between layers), each layer folded on DSPs, fully parallel on DSPs
or shift-add (``multiplier="lut"``), and some with a residual add or a concatenation of a layer's
input with its output (forks, FIFOs and joins). The kind cycles with the index in pairs, so the
even (calibration) and odd (held-out) halves hold every kind.
"""
from __future__ import annotations

import random

import torch
from torch import nn

import flow

MULTI_START = 1000  # multi-layer designs are numbered from here; single-layer ones below
# kind -> (the join, each layer's style: folded, parallel, lut or any)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "chain_folded": ("none", ("folded", "folded", "folded")),
    "chain_parallel": ("none", ("parallel", "parallel")),
    "chain_lut": ("none", ("lut", "lut", "lut")),
    "folded_to_lut": ("none", ("folded", "lut")),
    "lut_to_folded": ("none", ("lut", "folded")),
    "chain_mixed": ("none", ("any", "any", "any", "any")),
    "residual": ("residual", ("any", "any", "any")),
    "concat": ("concat", ("any", "any", "folded")),
}
SIZES = (8, 16, 32)
FULL = ("parallel", "lut")  # styles that take and give whole vectors in one beat


def kind_of(index: int) -> str:
    """The kind of multi-layer design ``index``: pairs (even, odd) share one, cycling over KINDS."""
    return list(KINDS)[((index - MULTI_START) // 2) % len(KINDS)]


def _styles(rng: random.Random, kind: str) -> list[str]:
    """Each layer's style; a chain draws 2 to 4 layers, "any" draws among the three."""
    join, styles = KINDS[kind]
    count = len(styles) if join != "none" else rng.randint(2, len(styles))
    return [rng.choice(("folded", "folded", "parallel", "lut")) if s == "any" else s for s in styles[:count]]


def _sizes(rng: random.Random, styles: list[str], join: str) -> list[int]:
    """Stream sizes: the input, then each layer's output (a residual layer keeps its input's)."""
    sizes = [rng.choice(SIZES)]
    for position, style in enumerate(styles):
        small = SIZES[:2] if style in FULL and sizes[-1] == 32 else SIZES  # keep constant layers quick
        n = sizes[-1] if join == "residual" and position == 1 else rng.choice(small)
        sizes.append(n)
    return sizes


def _folded_par(rng: random.Random, n_in: int, in_par: int, n_out: int, full_out: bool) -> int | None:
    """A folded layer's out_par (None: it would not fold)."""
    if full_out:
        return n_out if in_par < n_in else None
    choices = [d for d in (1, 2, 4, 8) if n_out % d == 0 and (in_par < n_in or d < n_out)]
    return rng.choice(choices) if choices else None


def _layers(rng: random.Random, styles: list[str], sizes: list[int], join: str) -> list[dict] | None:
    """Per layer: formats, activation, parallelism; None when the parallelism does not fit."""
    n0 = sizes[0]
    par = n0 if styles[0] in FULL else rng.choice([d for d in (1, 2, 4, 8) if n0 % d == 0 and d < n0])
    n_in, layers = n0, []
    for position, style in enumerate(styles):
        joined = join != "none" and position == 1
        n_out = sizes[position + 1]
        if style in FULL:
            if par != n_in:
                return None
            out_par = n_out
        else:
            following = styles[position + 1] if position + 1 < len(styles) else "folded"
            out_par = par if joined else _folded_par(rng, n_in, par, n_out, following in FULL)
            if out_par is None or n_out % out_par or (par == n_in and out_par == n_out):
                return None
        if joined and out_par != par:
            return None
        lut = style == "lut"
        layers.append({"n_in": n_in, "n_out": n_out, "style": style, "in_par": par, "out_par": out_par,
                       "x_width": rng.choice((4, 6, 8) if lut else (4, 6, 8, 12)),
                       "w_width": rng.choice((3, 4, 6, 8) if lut else (3, 4, 6, 8, 12)),
                       "out_width": rng.choice((4, 6, 8, 10)), "sparsity": rng.choice((0.0, 0.0, 0.5)),
                       "activation": rng.choice(("relu", "leaky_relu")) if position < len(styles) - 1
                       else rng.choice(("relu", "none")), "shift": rng.randint(1, 4)})
        n_in, par = n_out + (n_in if join == "concat" and joined else 0), out_par
    return layers


def draw_multi(index: int) -> dict:
    """The index-th multi-layer sweep design (seeded by its index; its kind by ``kind_of``)."""
    rng, kind = random.Random(index), kind_of(index)
    join = KINDS[kind][0]
    for _ in range(200):
        styles = _styles(rng, kind)
        sizes = _sizes(rng, styles, join)
        layers = _layers(rng, styles, sizes, join)
        if layers is not None:
            return {"index": index, "style": "multi", "kind": kind, "join": join, "in_features": sizes[0],
                    "in_par": layers[0]["in_par"],
                    "join_width": rng.choice((6, 8, 10)), "layers": layers, "seed": index}
    raise RuntimeError(f"no valid design of kind {kind} for index {index}")


class MultiNet(nn.Module):
    """fc1, act1, fc2, ...; the second layer's output is added to or concatenated with its input."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        self.join = spec["join"]
        self.fcs = nn.ModuleList(nn.Linear(layer["n_in"], layer["n_out"]) for layer in spec["layers"])
        self.acts = nn.ModuleList(nn.ReLU() if layer["activation"] == "relu" else
                                  nn.LeakyReLU(2.0 ** -layer["shift"]) if layer["activation"] == "leaky_relu"
                                  else nn.Identity() for layer in spec["layers"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for position, (fc, act) in enumerate(zip(self.fcs, self.acts)):
            y = act(fc(x))
            joined = position == 1 and self.join != "none"
            x = (x + y if self.join == "residual" else torch.cat([y, x], dim=-1)) if joined else y
        return x


def _quant(layer: dict) -> dict:
    x, w, out = layer["x_width"], layer["w_width"], layer["out_width"]
    return {"data_in_width": x, "data_in_frac_width": x // 2, "weight_width": w, "weight_frac_width": w - 2,
            "bias_width": 8, "bias_frac_width": 4, "data_out_width": out, "data_out_frac_width": out // 2}


def build_multi(spec: dict):
    """The compiled design and its input batch."""
    torch.manual_seed(spec["seed"])
    model = MultiNet(spec).eval()
    with torch.no_grad():
        for fc, layer in zip(model.fcs, spec["layers"]):
            fc.weight.mul_(4.0)
            if layer["sparsity"]:
                fc.weight[torch.rand_like(fc.weight) < layer["sparsity"]] = 0.0
    x = torch.rand(16, spec["in_features"]) * 2 - 1
    quant: dict = {f"fcs.{i}": _quant(layer) for i, layer in enumerate(spec["layers"])}
    quant["default"] = quant["fcs.0"]
    join = {"data_out_width": spec["join_width"], "data_out_frac_width": spec["join_width"] // 2}
    if spec["join"] != "none":
        quant["add" if spec["join"] == "residual" else "cat"] = join
    parallelism: dict = {f"fcs.{i}": {"in_par": "auto", "out_par": layer["out_par"],
                                      "multiplier": "lut" if layer["style"] == "lut" else "dsp"}
                         for i, layer in enumerate(spec["layers"])}
    parallelism["fcs.0"]["in_par"] = spec["in_par"]
    return flow.compile(model, x[:2], quant=quant, parallelism=parallelism, name="sweep"), x
